//! The shift report as one printable HTML page (A4, print CSS, no script,
//! nothing from outside): the figures of [`super::ShiftReport`] in tables,
//! and charts drawn by plotters on the server as inline SVG in paper ink.
//! Bahasa Indonesia, or English; times in the city's zone (WIB, WITA or WIT), labelled.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{ShiftReport, ANSWER_BANDS};
use crate::charts::{bar_chart, line_chart, ChartSpec, Series, Target};
use crate::domain::Zone;

/// The report's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Id,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "id" => Some(Lang::Id),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn t(self, id: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `t` in the city's local time.
fn local(zone: Zone, t: DateTime<Utc>) -> String {
    t.with_timezone(&zone.offset())
        .format("%d-%m-%Y %H:%M")
        .to_string()
}

/// A time that links into replay ("show me the room when this happened"):
/// the wall a minute before `t`, at x4, on the report's city.
fn replayed(r: &ShiftReport, t: DateTime<Utc>) -> String {
    let from =
        (t - chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "<a class=\"replay\" href=\"/?at={from}&amp;speed=4&amp;city={}\">{}</a>",
        esc(&r.city),
        local(r.zone, t)
    )
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1} %"))
}

fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1} s"))
}

/// The print stylesheet (A4 portrait, black on white), one file for both:
/// the web page links it (the screens' CSP allows no inline style), a page
/// written by `kendali report` carries it inline.
const CSS: &str = include_str!("../../web/css/report.css");

/// Where the page's stylesheet comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Styles {
    /// `<link>` to `/css/report.css` (served by Kendali).
    Linked,
    /// Inside the page (a file to keep or mail).
    Inline,
}

/// The page.
pub fn render(r: &ShiftReport, lang: Lang, styles: Styles) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = lang.t("Laporan serah terima shift", "Shift handover report");
    let _ = write!(
        h,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title} · {}</title>{}</head><body>",
        match lang {
            Lang::Id => "id",
            Lang::En => "en",
        },
        esc(&r.city),
        match styles {
            Styles::Linked => "<link rel=\"stylesheet\" href=\"/css/report.css\">".to_owned(),
            Styles::Inline => format!("<style>{CSS}</style>"),
        }
    );
    let _ = write!(
        h,
        "<h1>{title}: {}</h1><p class=\"meta\">{} {} – {} {zone} · {} {} {zone}</p>",
        esc(&r.city),
        lang.t("Shift", "Shift"),
        local(r.zone, r.from),
        local(r.zone, r.to),
        lang.t("dibuat", "generated"),
        local(r.zone, r.generated_at),
        zone = r.zone.label()
    );
    calls(&mut h, r, lang);
    answers(&mut h, r, lang);
    junctions(&mut h, r, lang);
    commands(&mut h, r, lang);
    alerts(&mut h, r, lang);
    handover(&mut h, r, lang);
    h.push_str("</body></html>\n");
    h
}

fn chart(h: &mut String, svg: Result<String, crate::charts::ChartError>) {
    if let Ok(svg) = svg {
        let _ = write!(h, "<figure>{svg}</figure>");
    }
}

fn paper(title: &str, y: &str) -> ChartSpec {
    let mut s = ChartSpec::new(title, y, 1200, 420);
    s.paper = true;
    s
}

fn calls(h: &mut String, r: &ShiftReport, lang: Lang) {
    let c = &r.calls;
    let _ = write!(
        h,
        "<section id=\"calls\"><h2>{}</h2><table><tr><th>{}</th><th class=\"n\">{}</th></tr>",
        lang.t("Panggilan darurat", "Emergency calls"),
        lang.t("Saluran", "Line"),
        lang.t("Masuk", "Received")
    );
    for (line, n) in &c.by_line {
        let _ = write!(h, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", esc(line));
    }
    let _ = write!(
        h,
        "<tr><th>{}</th><th class=\"n\" data-figure=\"received\">{}</th></tr></table>",
        lang.t("Jumlah", "Total"),
        c.received
    );
    // Every hour of the shift, those without calls too.
    let mut hours = Vec::new();
    let mut t = super::hour_of(r.from);
    while t < r.to {
        hours.push(t);
        t += chrono::Duration::hours(1);
    }
    let labels: Vec<String> = hours
        .iter()
        .map(|t| {
            t.with_timezone(&r.zone.offset())
                .format("%H:00")
                .to_string()
        })
        .collect();
    let series: Vec<(String, Vec<f64>)> = c
        .by_line
        .keys()
        .map(|line| {
            let per: Vec<f64> = hours
                .iter()
                .map(|t| {
                    c.per_hour
                        .iter()
                        .find(|p| p.hour == *t)
                        .and_then(|p| p.by_line.get(line))
                        .copied()
                        .unwrap_or(0) as f64
                })
                .collect();
            (line.clone(), per)
        })
        .collect();
    let mut spec = paper(
        lang.t("Panggilan per jam", "Calls per hour"),
        lang.t("panggilan", "calls"),
    );
    spec.x_label = format!("{} ({})", lang.t("Jam", "Hour"), r.zone.label());
    chart(h, bar_chart(&spec, &labels, &series));
    let _ = write!(
        h,
        "<table><tr><th>{}</th><th class=\"n\">{}</th><th class=\"n\">%</th></tr>",
        lang.t("Kategori", "Category"),
        lang.t("Panggilan", "Calls")
    );
    for (k, n) in &c.by_category {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\" data-category=\"{}\">{n}</td><td class=\"n\">{}</td></tr>",
            esc(k),
            esc(k),
            pct(c.share(*n))
        );
    }
    let _ = write!(
        h,
        "</table><table><tr><th>{}</th><th class=\"n\">{}</th><th class=\"n\">%</th></tr>\
         <tr><td>{}</td><td class=\"n\" data-figure=\"prank\">{}</td><td class=\"n\">{}</td></tr>\
         <tr><td>{}</td><td class=\"n\" data-figure=\"ghost\">{}</td><td class=\"n\">{}</td></tr>\
         <tr><td>{}</td><td class=\"n\" data-figure=\"abandoned\">{}</td><td class=\"n\">{}</td></tr></table></section>",
        lang.t("Bukan darurat", "Not emergencies"),
        lang.t("Panggilan", "Calls"),
        lang.t("Iseng (prank)", "Prank"),
        c.prank,
        pct(c.share(c.prank)),
        lang.t("Kosong (ghost)", "Ghost"),
        c.ghost,
        pct(c.share(c.ghost)),
        lang.t("Ditinggal penelepon", "Abandoned"),
        c.abandoned,
        pct(c.share(c.abandoned)),
    );
}

fn answers(h: &mut String, r: &ShiftReport, lang: Lang) {
    let a = &r.calls.answer;
    let _ = write!(
        h,
        "<section id=\"answers\"><h2>{}</h2><table><tr><th>{}</th><th class=\"n\">{}</th><th>{}</th></tr>",
        lang.t("Waktu jawab", "Answer times"),
        lang.t("Indikator", "Indicator"),
        lang.t("Nilai", "Value"),
        lang.t("Target", "Target"),
    );
    let target_of = |s: u32| {
        r.answer_targets
            .iter()
            .find(|(w, _)| *w == s)
            .map(|(_, share)| share * 100.0)
    };
    let mut row = |name: String,
                   figure: &str,
                   value: String,
                   target: Option<f64>,
                   met: Option<bool>| {
        let class = if met == Some(false) {
            " class=\"miss\""
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr{class}><td>{name}</td><td class=\"n\" data-figure=\"{figure}\">{value}</td><td>{}</td></tr>",
            target.map_or(String::new(), |t| format!("≥ {t:.0} %"))
        );
    };
    row(
        lang.t("Dijawab", "Answered").into(),
        "answered",
        a.answered.to_string(),
        None,
        None,
    );
    row(
        lang.t("Rerata waktu jawab", "Mean answer time").into(),
        "mean_s",
        secs(a.mean_s),
        None,
        None,
    );
    for (s, n) in [
        (10u32, a.within_10s),
        (15, a.within_15s),
        (20, a.within_20s),
    ] {
        let share = a.share(n);
        let target = target_of(s);
        let met = match (share, target) {
            (Some(v), Some(t)) => Some(v >= t),
            _ => None,
        };
        row(
            format!("{} ≤ {s} s", lang.t("Dijawab", "Answered")),
            &format!("within_{s}s"),
            format!("{n} ({})", pct(share)),
            target,
            met,
        );
    }
    row(
        lang.t(
            "Rerata 10 % terlama (EU 112)",
            "Mean of the slowest 10 % (EU 112)",
        )
        .into(),
        "slowest_tenth_mean_s",
        secs(a.slowest_tenth_mean_s),
        None,
        None,
    );
    h.push_str("</table>");
    let mut bands: Vec<String> = Vec::new();
    let mut lo = 0.0;
    for b in ANSWER_BANDS {
        bands.push(format!("{lo:.0}–{b:.0}"));
        lo = b;
    }
    bands.push(format!("> {lo:.0}"));
    let values: Vec<f64> = a.bands.iter().map(|n| *n as f64).collect();
    let mut spec = paper(
        lang.t(
            "Sebaran waktu jawab (detik)",
            "Answer-time distribution (seconds)",
        ),
        lang.t("panggilan", "calls"),
    );
    spec.x_label = lang.t("detik", "seconds").into();
    chart(
        h,
        bar_chart(
            &spec,
            &bands,
            &[(lang.t("dijawab", "answered").into(), values)],
        ),
    );
    h.push_str("</section>");
}

fn junctions(h: &mut String, r: &ShiftReport, lang: Lang) {
    let _ = write!(
        h,
        "<section id=\"junctions\"><h2>{}</h2>",
        lang.t("Simpang paling padat", "Most congested junctions")
    );
    if r.junctions.is_empty() {
        let _ = write!(
            h,
            "<p class=\"none\">{}</p></section>",
            lang.t("Tidak ada data ATCS.", "No ATCS data.")
        );
        return;
    }
    let _ = write!(
        h,
        "<table><tr><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr>",
        lang.t("Simpang", "Junction"),
        lang.t("DS rerata", "Mean DS"),
        lang.t("DS tertinggi", "Highest DS")
    );
    for j in &r.junctions {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\" data-junction=\"{}\">{:.3}</td><td class=\"n\">{:.3}</td></tr>",
            esc(&j.intersection),
            esc(&j.intersection),
            j.ds_avg,
            j.ds_max
        );
    }
    h.push_str("</table>");
    let series: Vec<Series> = r
        .junctions
        .iter()
        .map(|j| Series {
            name: j.intersection.clone(),
            points: j.hours.clone(),
            color: None,
        })
        .collect();
    let mut spec = paper(
        lang.t(
            "DS terburuk per jam selama shift",
            "Worst DS per hour over the shift",
        ),
        "DS",
    )
    .in_zone(r.zone);
    spec.x_label = format!("{} ({})", lang.t("Waktu", "Time"), r.zone.label());
    spec.target = Some(Target {
        value: 0.95,
        label: lang.t("jenuh", "saturated").into(),
    });
    chart(h, line_chart(&spec, &series));
    h.push_str("</section>");
}

fn commands(h: &mut String, r: &ShiftReport, lang: Lang) {
    let c = &r.commands;
    let _ = write!(
        h,
        "<section id=\"commands\"><h2>{} (<span data-figure=\"commands\">{}</span>)</h2>",
        lang.t("Perintah ke simpang", "Commands to junctions"),
        c.total
    );
    if c.total == 0 {
        let _ = write!(
            h,
            "<p class=\"none\">{}</p></section>",
            lang.t("Tidak ada perintah.", "No commands.")
        );
        return;
    }
    let _ = write!(
        h,
        "<table><tr><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr>",
        lang.t("Oleh", "By"),
        lang.t("Diterapkan", "Applied"),
        lang.t("Ditolak", "Rejected"),
        lang.t("Tanpa jawaban", "Unanswered")
    );
    for (who, o) in &c.by_issuer {
        let _ = write!(
            h,
            "<tr data-issuer=\"{}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(who),
            esc(who),
            o.applied,
            o.rejected,
            o.unanswered
        );
    }
    let _ = write!(
        h,
        "</table><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        r.zone.label(),
        lang.t("Simpang", "Junction"),
        lang.t("Perintah", "Command"),
        lang.t("Oleh", "By"),
        lang.t("Hasil", "Outcome")
    );
    for row in &c.rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            replayed(r, row.ts),
            esc(&row.intersection),
            esc(&row.action),
            esc(&row.issued_by),
            esc(row
                .status
                .as_deref()
                .unwrap_or(lang.t("tanpa jawaban", "unanswered")))
        );
    }
    h.push_str("</table></section>");
}

fn alerts(h: &mut String, r: &ShiftReport, lang: Lang) {
    let a = &r.alerts;
    let _ = write!(
        h,
        "<section id=\"alerts\"><h2>{}</h2><table><tr><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr>",
        lang.t("Alarm", "Alerts"),
        lang.t("Prioritas", "Priority"),
        lang.t("Muncul", "Raised"),
        lang.t("Diakui", "Acknowledged"),
        lang.t("Rerata waktu akui", "Mean time to acknowledge"),
        lang.t("Terlama", "Longest")
    );
    for (p, f) in &a.by_priority {
        let _ = write!(
            h,
            "<tr data-priority=\"{p}\"><td>P{p}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            f.raised,
            f.acknowledged,
            secs(f.ack_mean_s),
            secs(f.ack_max_s)
        );
    }
    h.push_str("</table>");
    if a.floods.is_empty() {
        let _ = write!(
            h,
            "<p>{} {} {}</p>",
            lang.t(
                "Tidak ada banjir alarm (lebih dari",
                "No alert flood (more than"
            ),
            a.flood_per_10_min,
            lang.t("alarm baru dalam 10 menit).", "new alerts in 10 minutes).")
        );
    } else {
        let _ = write!(
            h,
            "<p class=\"miss\">{} {} {}</p><table><tr><th>{}</th><th>{}</th><th class=\"n\">{}</th></tr>",
            lang.t("Banjir alarm (lebih dari", "Alert floods (more than"),
            a.flood_per_10_min,
            lang.t("alarm baru dalam 10 menit):", "new alerts in 10 minutes):"),
            lang.t("Dari", "From"),
            lang.t("Sampai", "To"),
            lang.t("Alarm", "Alerts")
        );
        for f in &a.floods {
            let _ = write!(
                h,
                "<tr data-flood><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                replayed(r, f.start),
                local(r.zone, f.end),
                f.raised
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
}

fn handover(h: &mut String, r: &ShiftReport, lang: Lang) {
    let o = &r.handover;
    let _ = write!(
        h,
        "<section id=\"handover\"><h2>{}</h2><p>{} <b data-figure=\"open_calls\">{}</b> · {} <b data-figure=\"live_alerts\">{}</b></p>",
        lang.t("Diserahterimakan", "Handed over"),
        lang.t("Panggilan masih terbuka:", "Calls still open:"),
        o.open_calls.len(),
        lang.t("Alarm masih aktif:", "Alerts still live:"),
        o.live_alerts.len()
    );
    if !o.open_calls.is_empty() {
        let _ = write!(
            h,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            lang.t("Panggilan", "Call"),
            lang.t("Saluran", "Line"),
            lang.t("Tahap", "Stage"),
            r.zone.label()
        );
        for c in &o.open_calls {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.call_id),
                esc(&c.line),
                esc(&c.stage),
                replayed(r, c.received_at)
            );
        }
        h.push_str("</table>");
    }
    if !o.live_alerts.is_empty() {
        let _ = write!(
            h,
            "<table><tr><th>P</th><th>{}</th><th>{}</th><th>{}</th><th>{} ({})</th></tr>",
            lang.t("Aturan", "Rule"),
            lang.t("Tentang", "About"),
            lang.t("Keadaan", "State"),
            lang.t("Sejak", "Since"),
            r.zone.label()
        );
        for a in &o.live_alerts {
            let _ = write!(
                h,
                "<tr><td>P{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.priority,
                a.rule.as_str(),
                esc(&a.entity),
                a.state.as_str(),
                replayed(r, a.raised_at.with_timezone(&Utc))
            );
        }
        h.push_str("</table>");
    }
    match &r.audit {
        Some(m) => {
            let _ = write!(
                h,
                "<p>{} #{} ({} {}): <span class=\"hash\" data-figure=\"audit_hash\">{}</span></p>",
                lang.t(
                    "Rantai audit, baris terakhir shift",
                    "Audit chain, the shift's last row"
                ),
                m.id,
                local(r.zone, m.at),
                r.zone.label(),
                esc(&m.hash)
            );
        }
        None => {
            let _ = write!(
                h,
                "<p class=\"none\">{}</p>",
                lang.t("Audit kosong.", "The audit is empty.")
            );
        }
    }
    h.push_str("</section>");
}
