// i18n: the screens' words in Bahasa Indonesia (default) and English
// (`?lang=en`), and every number, time and duration format. Clock times are
// the city's local time whatever the PC's zone: WIB (Asia/Jakarta, UTC+7) by
// default, WITA (UTC+8) or WIT (UTC+9) once `setZone` is told the city's
// (the server's `[cities]` settings, from /api/me); none has daylight saving.

/** Indonesia's zones: the label the screens show, and the IANA zone. */
const ZONES = { WIB: 'Asia/Jakarta', WITA: 'Asia/Makassar', WIT: 'Asia/Jayapura' };

/** The zone of `city` in /api/me's `time_zones` (`{default, cities}`); WIB when unknown. */
export function zoneOf(timeZones, city) {
  const z = (timeZones && ((city && timeZones.cities && timeZones.cities[city]) || timeZones.default)) || 'WIB';
  return ZONES[z] ? z : 'WIB';
}

const WORDS = {
  id: {
    app: 'Ruang Kendali',
    wib: 'WIB',
    conn_live: 'TERHUBUNG',
    conn_connecting: 'MENYAMBUNG...',
    conn_reconnecting: 'menyambung ulang...',
    conn_attempt: 'percobaan {n}',
    conn_banner: 'Koneksi ke server terputus: menyambung ulang...',
    conn_replay: 'PEMUTARAN ULANG',
    replay_banner: 'PEMUTARAN ULANG · bukan siaran langsung',
    replay_play: 'Putar',
    replay_pause: 'Jeda',
    replay_step: 'Maju 10 detik',
    replay_speed: 'Kecepatan',
    replay_live: 'Kembali ke siaran langsung',
    replay_read_only: 'Pemutaran ulang hanya untuk dilihat: tidak ada tindakan yang dapat dilakukan',
    replay_bad_at: 'at={at} bukan waktu RFC 3339 (mis. 2026-12-05T08:12:00+07:00)',
    replay_link: 'Lihat ruang kendali saat itu',
    data: 'Data',
    data_age: 'data {age}',
    since: 'sejak {time}',
    stale_panel: 'DATA TERHENTI sejak {time}',
    no_data: 'belum ada data',
    screen: 'Layar {n}/{of}',
    more: '+{n} lainnya',
    logout: 'Keluar',
    // calls
    calls_title: 'Panggilan Darurat 112 · 119',
    calls_title_desk: 'Panggilan di meja operator',
    calls_title_field: 'Penanganan di lapangan',
    line_112: '112 Darurat',
    line_119: '119 PSC Medis',
    received_today: 'Masuk',
    answered_within: 'Dijawab ≤ {s} dtk',
    within_s: '≤ {s} dtk',
    eu_mean: 'Rerata',
    eu_mean_2: 'jawab',
    eu_slowest: '10 %',
    eu_slowest_2: 'terlama',
    eu_abandon: 'Ditinggal',
    eu_abandon_2: '% masuk',
    eu_prank: 'Iseng +',
    eu_prank_2: 'kosong',
    waiting_now: 'Menunggu',
    open_now: 'Terbuka',
    abandoned: 'Ditinggal',
    target: 'target {v}',
    target_ge: 'target ≥ {v}',
    target_le: 'target ≤ {v}',
    queue_title: 'Antrean panggilan terbuka',
    queue_empty: 'Tidak ada panggilan terbuka',
    categories_title: 'Kategori hari ini',
    no_location: 'lokasi belum diketahui',
    cat: {
      fire: 'Kebakaran', medical: 'Medis', crime: 'Kriminal', traffic_accident: 'Laka lantas',
      disaster: 'Bencana', public_service: 'Layanan umum', prank: 'Iseng', other: 'Lainnya', unknown: 'Belum dikategori',
    },
    stage: {
      received: 'MENUNGGU', answered: 'DIJAWAB', classified: 'DIKLASIFIKASI', dispatched: 'UNIT DIKIRIM',
      en_route: 'MENUJU LOKASI', on_scene: 'DI LOKASI', closed: 'SELESAI', abandoned: 'DITINGGAL', transferred: 'DIALIHKAN',
    },
    // traffic
    traffic_title: 'Lalu Lintas · ATCS',
    junctions: '{n} simpang',
    worst_title: 'Simpang paling jenuh',
    offline_title: 'Offline · kedip · mati',
    offline: 'OFFLINE',
    all_online: 'Semua simpang daring dan normal',
    cycle: '{s} dtk',
    plan: 'rencana {p}',
    grade_legend: 'DS: A–C lancar · D padat · E hampir jenuh · F jenuh (> 1,0)',
    mode: { adaptive: 'ADAPTIF', fixed: 'TETAP', manual: 'MANUAL', flashing: 'KEDIP', off: 'MATI' },
    // map
    map_title: 'Peta Kota',
    legend_calls: 'Panggilan (prioritas)',
    legend_units: 'Unit lapangan',
    unit_busy: 'bertugas',
    legend_incident: 'Insiden',
    unit_status: {
      available: 'Siaga', dispatched: 'Ditugaskan', en_route: 'Menuju', on_scene: 'Di lokasi',
      returning: 'Kembali', out_of_service: 'Tidak aktif',
    },
    // services
    services_title: 'Layanan Kota',
    complaints_title: 'Aduan per OPD',
    no_complaints: 'Tidak ada aduan terbuka',
    unit_word: { '%': '%', count: '', min: 'mnt', s: 'dtk', h: 'jam' },
    spark_span: '{span} terakhir',
    metric: {
      permits_on_time_pct: 'Izin terbit tepat waktu', permits_in_process: 'Izin dalam proses',
      avg_wait_min: 'Rata-rata waktu tunggu', patients_in_queue: 'Pasien antre',
      loans_30d: 'Peminjaman 30 hari', aid_disbursed_on_time_pct: 'Bantuan cair tepat waktu',
      active_sellers: 'Penjual aktif', orders_per_hour: 'Pesanan per jam',
      assets_certified_pct: 'Aset bersertifikat', road_good_condition_pct: 'Jalan kondisi baik',
      repairs_within_sla_pct: 'Perbaikan sesuai SLA', pbb_realization_pct: 'Realisasi PBB',
      complaints_resolved_on_time_pct: 'Aduan selesai tepat waktu', complaints_open: 'Aduan terbuka',
    },
    // ticker; the feed families (the alerts name them)
    ticker_title: 'Peristiwa',
    ticker_empty: 'Belum ada peristiwa alarm',
    family: { atcs: 'ATCS', calls: 'panggilan', units: 'unit', apps: 'aplikasi', kpi: 'KPI' },
  },
  en: {
    app: 'Command Room',
    wib: 'WIB',
    conn_live: 'CONNECTED',
    conn_connecting: 'CONNECTING...',
    conn_reconnecting: 'reconnecting...',
    conn_attempt: 'attempt {n}',
    conn_banner: 'Lost the server connection: reconnecting...',
    conn_replay: 'REPLAY',
    replay_banner: 'REPLAY · not live',
    replay_play: 'Play',
    replay_pause: 'Pause',
    replay_step: 'Forward 10 seconds',
    replay_speed: 'Speed',
    replay_live: 'Back to live',
    replay_read_only: 'A replay is for watching: no action can be taken',
    replay_bad_at: 'at={at} is not an RFC 3339 time (e.g. 2026-12-05T08:12:00+07:00)',
    replay_link: 'Show the room when this happened',
    data: 'Data',
    data_age: 'data {age}',
    since: 'since {time}',
    stale_panel: 'NO DATA since {time}',
    no_data: 'no data yet',
    screen: 'Screen {n}/{of}',
    more: '+{n} more',
    logout: 'Log out',
    calls_title: 'Emergency Calls 112 · 119',
    calls_title_desk: 'Calls at the call-takers',
    calls_title_field: 'Responses in the field',
    line_112: '112 Emergency',
    line_119: '119 Medical',
    received_today: 'Received',
    answered_within: 'Answered ≤ {s} s',
    within_s: '≤ {s} s',
    eu_mean: 'Mean',
    eu_mean_2: 'answer',
    eu_slowest: 'Slowest',
    eu_slowest_2: '10 %',
    eu_abandon: 'Abandon',
    eu_abandon_2: 'rate',
    eu_prank: 'Prank +',
    eu_prank_2: 'ghost',
    waiting_now: 'Waiting',
    open_now: 'Open',
    abandoned: 'Abandoned',
    target: 'target {v}',
    target_ge: 'target ≥ {v}',
    target_le: 'target ≤ {v}',
    queue_title: 'Open calls',
    queue_empty: 'No open calls',
    categories_title: 'Categories today',
    no_location: 'location unknown',
    cat: {
      fire: 'Fire', medical: 'Medical', crime: 'Crime', traffic_accident: 'Road accident',
      disaster: 'Disaster', public_service: 'Public service', prank: 'Prank', other: 'Other', unknown: 'Unclassified',
    },
    stage: {
      received: 'WAITING', answered: 'ANSWERED', classified: 'CLASSIFIED', dispatched: 'DISPATCHED',
      en_route: 'EN ROUTE', on_scene: 'ON SCENE', closed: 'CLOSED', abandoned: 'ABANDONED', transferred: 'TRANSFERRED',
    },
    traffic_title: 'Traffic · ATCS',
    junctions: '{n} junctions',
    worst_title: 'Most saturated junctions',
    offline_title: 'Offline · flashing · off',
    offline: 'OFFLINE',
    all_online: 'All junctions online and normal',
    cycle: '{s} s',
    plan: 'plan {p}',
    grade_legend: 'DS: A–C free · D busy · E near capacity · F over capacity (> 1.0)',
    mode: { adaptive: 'ADAPTIVE', fixed: 'FIXED', manual: 'MANUAL', flashing: 'FLASHING', off: 'OFF' },
    map_title: 'City Map',
    legend_calls: 'Calls (priority)',
    legend_units: 'Field units',
    unit_busy: 'on a call',
    legend_incident: 'Incident',
    unit_status: {
      available: 'Available', dispatched: 'Dispatched', en_route: 'En route', on_scene: 'On scene',
      returning: 'Returning', out_of_service: 'Out of service',
    },
    services_title: 'City Services',
    complaints_title: 'Complaints by agency',
    no_complaints: 'No open complaints',
    unit_word: { '%': '%', count: '', min: 'min', s: 's', h: 'h' },
    spark_span: 'last {span}',
    metric: {
      permits_on_time_pct: 'Permits issued on time', permits_in_process: 'Permits in process',
      avg_wait_min: 'Average wait', patients_in_queue: 'Patients waiting',
      loans_30d: 'Loans in 30 days', aid_disbursed_on_time_pct: 'Aid paid on time',
      active_sellers: 'Active sellers', orders_per_hour: 'Orders per hour',
      assets_certified_pct: 'Assets certified', road_good_condition_pct: 'Roads in good condition',
      repairs_within_sla_pct: 'Repairs within SLA', pbb_realization_pct: 'Property tax collected',
      complaints_resolved_on_time_pct: 'Complaints resolved on time', complaints_open: 'Open complaints',
    },
    ticker_title: 'Events',
    ticker_empty: 'No alert events yet',
    family: { atcs: 'ATCS', calls: 'call', units: 'unit', apps: 'app', kpi: 'KPI' },
  },
};

/** The wall's language and formats. */
export class I18n {
  constructor(lang) {
    this.lang = lang === 'en' ? 'en' : 'id';
    this.words = WORDS[this.lang];
    const locale = this.lang === 'en' ? 'en-GB' : 'id-ID';
    this.locale = locale;
    this._nums = new Map();
    this.setZone('WIB');
  }

  /** Shows times in `zone` (`WIB`, `WITA` or `WIT`), labelled with it. */
  setZone(zone) {
    this.zone = ZONES[zone] ? zone : 'WIB';
    const timeZone = ZONES[this.zone];
    this.words = { ...WORDS[this.lang], wib: this.zone };
    this._time = new Intl.DateTimeFormat(this.locale, { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    this._clock = new Intl.DateTimeFormat(this.locale, { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    this._date = new Intl.DateTimeFormat(this.locale, { timeZone, weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
  }

  /** A word by dotted key, with `{name}` placeholders filled from `vars`. */
  t(key, vars) {
    let v = this.words;
    for (const part of key.split('.')) v = v == null ? undefined : v[part];
    if (typeof v !== 'string') v = key.split('.').pop();
    return vars ? v.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? '')) : v;
  }

  /** A KPI metric's name (`permits_on_time_pct` -> "Izin terbit tepat waktu"), or the id in words. */
  metric(id) {
    const w = this.words.metric[id];
    return w || id.replace(/_pct$/, ' %').replace(/_/g, ' ');
  }

  /** A KPI value with its unit: "93,4 %", "10.200", "24 mnt". */
  kpi(value, unit) {
    if (value == null || !Number.isFinite(value)) return '–';
    const digits = unit === '%' ? 1 : Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : 1;
    const word = this.words.unit_word[unit] ?? unit;
    return word ? `${this.num(value, digits)} ${word}` : this.num(value, digits);
  }

  /** A number with `digits` decimals in the locale (id: 1.234,5). */
  num(v, digits = 0) {
    if (v == null || !Number.isFinite(v)) return '–';
    let f = this._nums.get(digits);
    if (!f) {
      f = new Intl.NumberFormat(this.locale, { minimumFractionDigits: digits, maximumFractionDigits: digits });
      this._nums.set(digits, f);
    }
    return f.format(v);
  }

  /** `HH:MM` in the city's zone; `withZone` appends it (" WIB"). */
  time(ms, withZone = false) {
    if (!Number.isFinite(ms)) return '–';
    const s = this._time.format(ms).replace('.', ':');
    return withZone ? `${s} ${this.zone}` : s;
  }

  /** `HH:MM:SS` in the city's zone (the status clock). */
  clock(ms) {
    return this._clock.format(ms).replace(/\./g, ':');
  }

  /** The long date in the city's zone, e.g. "Minggu, 22 November 2026". */
  date(ms) {
    return this._date.format(ms);
  }

  /** A short age: "0,4 dtk", "12 dtk", "3 mnt", "2 jam". */
  age(seconds) {
    if (!Number.isFinite(seconds)) return '–';
    const s = Math.max(0, seconds);
    const sec = this.lang === 'en' ? 's' : 'dtk';
    if (s < 10) return `${this.num(s, 1)} ${sec}`;
    if (s < 90) return `${this.num(Math.floor(s))} ${sec}`;
    if (s < 5400) return `${this.num(Math.floor(s / 60))} ${this.lang === 'en' ? 'min' : 'mnt'}`;
    return `${this.num(Math.floor(s / 3600))} ${this.lang === 'en' ? 'h' : 'jam'}`;
  }

  /** A running timer "m:ss" (or "h:mm:ss" past an hour). */
  timer(seconds) {
    if (!Number.isFinite(seconds)) return '–:––';
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }

  /** A percentage "91,2 %". */
  pct(v, digits = 1) {
    return v == null || !Number.isFinite(v) ? '–' : `${this.num(v, digits)} %`;
  }
}
