// The alerts' words, in Bahasa Indonesia (default) and English (`?lang=en`),
// shared by the wall, the dispatcher console and the traffic console: the
// ISA-18.2 states in words (a state is never told by colour alone), each
// rule's sentence, the actions and their pending and failed states, the
// alarm rate and the sound switch. Numbers, times and the feed family words
// come from i18n.js. `alertWords(lang)` gives a `t(key, vars)` like I18n's.

const WORDS = {
  id: {
    title: 'Alarm',
    strip_title: 'Alarm',
    none: 'Tidak ada alarm aktif',
    none_short: 'tidak ada alarm',
    // states, in words: filled and blinking (unacknowledged) or outlined and steady (acknowledged)
    state: {
      active_unack: 'BELUM DIAKUI',
      active_ack: 'DIAKUI',
      cleared_unack: 'SELESAI · BELUM DIAKUI',
      normal: 'NORMAL',
      shelved: 'DITUNDA',
    },
    acked_by: 'DIAKUI · {who}',
    priority: { 1: 'KRITIS', 2: 'TINGGI', 3: 'SEDANG', 4: 'RENDAH' },
    prio_chip: 'P{p}',
    since: 'sejak {time} · {age}',
    since_short: '{time} · {age}',
    cleared_at: 'kondisi selesai {time}',
    shelved_until: 'ditunda oleh {who} sampai {time}',
    shelved_reason: 'alasan: {reason}',
    more: '+{n} lainnya',
    more_unack: '+{n} lainnya ({u} belum diakui)',
    group_n: '{n} alarm',
    incident: 'Insiden {id}',
    // counts and rate
    unacked_n: '{n} belum diakui',
    shelved_n: 'Ditunda ({n})',
    suppressed_n: '{n} ditekan menurut desain',
    rate: '{n} / {limit} per {min} mnt',
    rate_hint: 'alarm baru dalam {min} menit terakhir di layar ini; batas banjir alarm ISA-18.2 / EEMUA 191: {limit} per {min} menit per operator',
    flood: 'BANJIR ALARM',
    // rules: {what} the entity in words, {value} and {threshold} formatted. A
    // wait's alert says its limit, not the wait measured when it was raised
    // (that number would stand still while the wait goes on; "sejak" runs).
    rule: {
      call_unanswered: 'Panggilan {what} belum dijawab lebih dari {threshold}',
      answer_target: 'Jalur {what}: {value} dijawab tepat waktu, di bawah target {threshold}',
      unit_stage: 'Unit {what} di satu tahap lebih dari {threshold}',
      feed_stale: 'Data {what} terhenti lebih dari {threshold}',
      controller_offline: '{what}: pengendali tidak terhubung',
      controller_flashing: '{what}: lampu kedip atau mati',
      detector_fault: '{what}: detektor rusak',
      junction_congested: '{what} jenuh: DS {value} (batas {threshold})',
      command_timed_out: '{what}: perintah tidak dijawab pengendali',
      kpi_below_target: '{what}: {value}, target {threshold}',
      call_surge: 'Lonjakan panggilan {what}: {value} dari biasanya',
      other: '{rule}: {what}',
    },
    // the ticker
    tr: {
      raised: 'BARU',
      acknowledged: 'DIAKUI oleh {who}',
      cleared: 'SELESAI',
    },
    // actions
    btn: { ack: 'Akui', shelve: 'Tunda', unshelve: 'Lepas tunda' },
    replay_link: 'Lihat ruang kendali saat alarm ini muncul (pemutaran ulang)',
    btn_hint: {
      ack: 'akui alarm ini (ISA-18.2: operator sudah melihatnya)',
      shelve: 'sembunyikan alarm ini sementara, dengan alasan',
      unshelve: 'tampilkan lagi alarm ini sekarang',
    },
    pending: { ack: 'mengakui…', shelve: 'menunda…', unshelve: 'melepas…' },
    waiting: 'menunggu',
    unconfirmed: 'BELUM TERKONFIRMASI',
    failed: '{act} gagal: {error}',
    act_word: { ack: 'Akui', shelve: 'Tunda', unshelve: 'Lepas tunda' },
    no_answer: 'server tidak menjawab ({error})',
    // the shelve form
    shelve_title: 'Tunda alarm',
    l_reason: 'Alasan (wajib)',
    l_minutes: 'Lama, menit (1–{max})',
    send: 'Tunda (Enter)',
    cancel: 'Batal (Esc)',
    err_reason: 'alasan wajib diisi',
    err_minutes: 'menit harus antara 1 dan {max}',
    sending: 'mengirim…',
    // sound
    sound_off: 'SUARA MATI',
    sound_on: 'SUARA AKTIF',
    sound_enable: 'Aktifkan suara',
    sound_mute: 'Matikan suara',
    sound_none: 'TANPA SUARA',
    sound_none_hint: 'peramban ini tidak dapat membunyikan suara',
    sound_hint: 'bunyi untuk setiap alarm baru prioritas 1 dan 2',
    // keys
    key_hint: '! alarm · ←/→ tombol · Esc kembali',
  },
  en: {
    title: 'Alerts',
    strip_title: 'Alerts',
    none: 'No active alerts',
    none_short: 'no alerts',
    state: {
      active_unack: 'UNACKNOWLEDGED',
      active_ack: 'ACKNOWLEDGED',
      cleared_unack: 'CLEARED · UNACKNOWLEDGED',
      normal: 'NORMAL',
      shelved: 'SHELVED',
    },
    acked_by: 'ACKNOWLEDGED · {who}',
    priority: { 1: 'CRITICAL', 2: 'HIGH', 3: 'MEDIUM', 4: 'LOW' },
    prio_chip: 'P{p}',
    since: 'since {time} · {age}',
    since_short: '{time} · {age}',
    cleared_at: 'condition ended {time}',
    shelved_until: 'shelved by {who} until {time}',
    shelved_reason: 'reason: {reason}',
    more: '+{n} more',
    more_unack: '+{n} more ({u} unacknowledged)',
    group_n: '{n} alerts',
    incident: 'Incident {id}',
    unacked_n: '{n} unacknowledged',
    shelved_n: 'Shelved ({n})',
    suppressed_n: '{n} suppressed by design',
    rate: '{n} / {limit} per {min} min',
    rate_hint: 'new alerts in the last {min} minutes on this screen; ISA-18.2 / EEMUA 191 alarm flood limit: {limit} per {min} minutes per operator',
    flood: 'ALARM FLOOD',
    rule: {
      call_unanswered: 'Call {what} unanswered for over {threshold}',
      answer_target: 'Line {what}: {value} answered in time, below target {threshold}',
      unit_stage: 'Unit {what} in one stage for over {threshold}',
      feed_stale: '{what} data stopped for over {threshold}',
      controller_offline: '{what}: controller out of contact',
      controller_flashing: '{what}: signals flashing or off',
      detector_fault: '{what}: detector fault',
      junction_congested: '{what} congested: DS {value} (limit {threshold})',
      command_timed_out: '{what}: command not answered by the controller',
      kpi_below_target: '{what}: {value}, target {threshold}',
      call_surge: 'Call surge on {what}: {value} the usual',
      other: '{rule}: {what}',
    },
    tr: {
      raised: 'NEW',
      acknowledged: 'ACKNOWLEDGED by {who}',
      cleared: 'CLEARED',
    },
    btn: { ack: 'Acknowledge', shelve: 'Shelve', unshelve: 'Unshelve' },
    replay_link: 'Show the room when this alert was raised (replay)',
    btn_hint: {
      ack: 'acknowledge this alert (ISA-18.2: an operator has seen it)',
      shelve: 'hide this alert for a while, with a reason',
      unshelve: 'show this alert again now',
    },
    pending: { ack: 'acknowledging…', shelve: 'shelving…', unshelve: 'unshelving…' },
    waiting: 'waiting',
    unconfirmed: 'NOT CONFIRMED',
    failed: '{act} failed: {error}',
    act_word: { ack: 'Acknowledge', shelve: 'Shelve', unshelve: 'Unshelve' },
    no_answer: 'no answer from the server ({error})',
    shelve_title: 'Shelve alert',
    l_reason: 'Reason (required)',
    l_minutes: 'For, minutes (1–{max})',
    send: 'Shelve (Enter)',
    cancel: 'Cancel (Esc)',
    err_reason: 'a reason is required',
    err_minutes: 'minutes must be between 1 and {max}',
    sending: 'sending…',
    sound_off: 'SOUND OFF',
    sound_on: 'SOUND ON',
    sound_enable: 'Enable sound',
    sound_mute: 'Mute',
    sound_none: 'NO SOUND',
    sound_none_hint: 'this browser cannot play sound',
    sound_hint: 'a chime for every new priority 1 and 2 alert',
    key_hint: '! alerts · ←/→ buttons · Esc back',
  },
};

/** `t(key, vars)` for `lang` ('id' or 'en'): dotted keys, `{name}` placeholders; an unknown key gives its last part. */
export function alertWords(lang) {
  const table = WORDS[lang === 'en' ? 'en' : 'id'];
  return function t(key, vars) {
    let v = table;
    for (const part of key.split('.')) v = v == null ? undefined : v[part];
    if (typeof v !== 'string') v = key.split('.').pop();
    return vars ? v.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? '')) : v;
  };
}
