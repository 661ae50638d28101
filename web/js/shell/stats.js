// What a screen costs, for tests and for the operators' curiosity:
// `window.__kendali.stats` is read on demand (a getter), so keeping it costs
// nothing between reads. The page adds its own fields (the wall: layout,
// screen) and sizes (KPI series, ticker notes).

export function defineStats(k, { replica, scheduler, socket, shell, page }) {
  const round = (x) => Math.round(x * 100) / 100;
  Object.defineProperty(k, 'stats', {
    configurable: true,
    get() {
      const mem = performance.memory;
      const rs = replica.stats;
      const render = scheduler.stats;
      const panels = scheduler.panels;
      return {
        ...(page.stats ? page.stats() : {}),
        panels: panels.map((p) => p.type),
        frames_applied: rs.frames,
        updates_applied: rs.updates,
        events_applied: rs.events,
        updates_ignored: rs.ignored,
        snapshots: rs.snapshots,
        resets: rs.resets,
        resumes: rs.resumes,
        heartbeats: rs.heartbeats,
        bytes_received: rs.bytes,
        apply_ms_avg: round(rs.applyMs),
        apply_ms_max: round(rs.applyMsMax),
        renders: render.count,
        panel_renders: render.panelRenders,
        panel_ms_avg: Object.fromEntries(panels.map((p, i) => [`${p.type}${i}`, round(p.ms || 0)])),
        panel_ms_max: Object.fromEntries(panels.map((p, i) => [`${p.type}${i}`, round(p.msMax || 0)])),
        render_ms_avg: round(render.ms),
        render_ms_max: round(render.msMax),
        render_ms_max_first: round(render.msMaxFirst),
        render_ms_last: round(render.msLast),
        reconnects: socket ? socket.reconnects : 0,
        connection: shell.conn.state,
        last_seq: replica.lastSeq,
        resume_seq: replica.resumeSeq(),
        server_offset_ms: Math.round(shell.clock.offsetMs),
        user: shell.me.anonymous ? null : shell.me.username,
        dom_nodes: document.getElementsByTagName('*').length,
        heap_used_mb: mem ? round(mem.usedJSHeapSize / 1048576) : null,
        heap_total_mb: mem ? round(mem.totalJSHeapSize / 1048576) : null,
        sizes: { ...replica.sizes(), ...(page.sizes ? page.sizes() : {}) },
        uptime_s: Math.round((Date.now() - k.bootedAt) / 1000),
      };
    },
  });
}
