//! History charts for the wall, rendered on the server with plotters as SVG.
//!
//! Pure functions: a [`ChartSpec`] and some [`Series`] in, an SVG document
//! (a `String`) out, no I/O and no clock. The HTTP endpoints
//! (`/api/charts/...svg`) feed them from the store's history queries.
//!
//! Choices, and why:
//! - **Time axis in the city's zone** (WIB, WITA or WIT: [`ChartSpec::zone`]),
//!   whatever the server's zone. Ticks fall on whole local minutes, hours or
//!   days ([`LocalAxis`]), never on "nice" epoch numbers.
//! - **Text stays text**: plotters is built without a font crate (no font
//!   file to ship, nothing to rasterise). Its SVG backend writes labels as
//!   `<text>` elements that the browser lays out with the system font stack
//!   (`font-family` below); plotters only estimates their width for spacing.
//! - **Dark wall palette**: the same colours as the screens (`web/css/wall.css`),
//!   thick lines, large labels; the target is a dashed amber line, labelled.

use std::fmt::Write as _;
use std::ops::Range;

use chrono::{DateTime, TimeZone, Utc};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

/// An sRGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    fn color(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }
}

/// The wall's palette (`web/css/wall.css` uses the same values).
pub mod palette {
    use super::Rgb;
    /// Panel background.
    pub const BACKGROUND: Rgb = Rgb(0x0f, 0x17, 0x24);
    /// Grid lines: visible, never louder than the data.
    pub const GRID: Rgb = Rgb(0x26, 0x33, 0x47);
    /// Axis lines and labels.
    pub const TEXT: Rgb = Rgb(0xc9, 0xd3, 0xe0);
    /// Titles.
    pub const TITLE: Rgb = Rgb(0xf1, 0xf5, 0xf9);
    /// Target lines ("warn" amber: a threshold, not a value).
    pub const TARGET: Rgb = Rgb(0xfb, 0xbf, 0x24);
    /// Series colours, in order: distinct in hue and lightness for colour-blind readers.
    pub const SERIES: [Rgb; 5] = [
        Rgb(0x38, 0xbd, 0xf8), // sky
        Rgb(0xf4, 0x72, 0xb6), // pink
        Rgb(0xa3, 0xe6, 0x35), // lime
        Rgb(0xc0, 0x84, 0xfc), // violet
        Rgb(0xfb, 0x92, 0x3c), // orange
    ];
}

/// The colours a chart is drawn in: the wall's, or paper's.
struct Ink {
    background: RGBColor,
    grid: RGBColor,
    text: RGBColor,
    title: RGBColor,
    target: RGBColor,
}

impl Ink {
    fn of(spec: &ChartSpec) -> Ink {
        if spec.paper {
            Ink {
                background: WHITE,
                grid: RGBColor(0xd4, 0xd9, 0xe0),
                text: RGBColor(0x33, 0x3d, 0x4a),
                title: BLACK,
                // Darker amber: the wall's is too pale on white.
                target: RGBColor(0xb4, 0x53, 0x09),
            }
        } else {
            Ink {
                background: palette::BACKGROUND.color(),
                grid: palette::GRID.color(),
                text: palette::TEXT.color(),
                title: palette::TITLE.color(),
                target: palette::TARGET.color(),
            }
        }
    }
}

/// Series of at most this many points get a marker on each.
const MARKED_POINTS: usize = 48;

/// The font stack of the screens: no font file, whatever the browser has.
const FONT: &str = "system-ui, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', sans-serif";

/// What to draw around the data.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    /// Under the time axis, e.g. `Waktu (WIB)`.
    pub x_label: String,
    /// Beside the value axis, e.g. `% tepat waktu`.
    pub y_label: String,
    /// Pixel size of the SVG.
    pub width: u32,
    pub height: u32,
    /// A horizontal reference line (e.g. the KPI target) and its label.
    pub target: Option<Target>,
    /// Fixed value range; `None` fits the data (and the target) with a margin.
    pub y_range: Option<(f64, f64)>,
    /// Fill under each line (one series reads better filled).
    pub area: bool,
    /// Dark ink on white, for paper (the shift report); the wall's palette otherwise.
    pub paper: bool,
    /// The city's zone the time axis reads in.
    pub zone: crate::domain::Zone,
}

impl ChartSpec {
    /// The time axis in `zone`, labelled so.
    pub fn in_zone(mut self, zone: crate::domain::Zone) -> ChartSpec {
        self.zone = zone;
        self.x_label = format!("Waktu ({})", zone.label());
        self
    }

    /// A chart of the given size with the wall's defaults (WIB axis label, no target).
    pub fn new(
        title: impl Into<String>,
        y_label: impl Into<String>,
        width: u32,
        height: u32,
    ) -> ChartSpec {
        ChartSpec {
            title: title.into(),
            x_label: "Waktu (WIB)".into(),
            y_label: y_label.into(),
            width,
            height,
            target: None,
            y_range: None,
            area: false,
            paper: false,
            zone: crate::domain::Zone::Wib,
        }
    }
}

/// A reference line.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub value: f64,
    pub label: String,
}

/// One line: named points in time order (unsorted input is sorted).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(DateTime<Utc>, f64)>,
    /// `None` takes the next colour of [`palette::SERIES`].
    pub color: Option<Rgb>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChartError {
    #[error("nothing to draw: no series has a point")]
    Empty,
    #[error("series {series:?} has a value that is not a finite number")]
    NotFinite { series: String },
    #[error("chart size {0}x{1} is outside 120x80..=7680x4320")]
    BadSize(u32, u32),
    #[error("y range {0}..{1} is empty or not finite")]
    BadRange(f64, f64),
    #[error("drawing: {0}")]
    Drawing(String),
}

fn drawing<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Drawing(format!("{e:?}"))
}

/// A time axis in seconds since the epoch whose ticks fall on whole WIB
/// minutes, hours or days, and whose labels read in the city's zone.
#[derive(Clone, Debug)]
pub struct LocalAxis {
    start: i64,
    end: i64,
    /// The zone's offset from UTC, seconds (no zone of Indonesia has
    /// daylight saving: aligning to local boundaries is a fixed shift).
    offset_s: i64,
}

/// Candidate tick steps, seconds: the first giving at most the hinted count wins.
const TICK_STEPS: [i64; 12] = [
    60,
    300,
    600,
    900,
    1800,
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    7 * 86_400,
];
impl LocalAxis {
    pub fn new(start: i64, end: i64, zone: crate::domain::Zone) -> LocalAxis {
        LocalAxis {
            start,
            end: end.max(start + 1),
            offset_s: i64::from(zone.hours()) * 3600,
        }
    }

    /// The tick step for at most `max` ticks.
    fn step(&self, max: usize) -> i64 {
        let span = self.end - self.start;
        let max = max.max(1) as i64;
        TICK_STEPS
            .into_iter()
            .find(|s| span / s < max)
            .unwrap_or(30 * 86_400)
    }

    /// Label of a tick: `HH:MM` within a day, `DD/MM HH:MM` or `DD/MM` across days.
    pub fn label(&self, t: i64) -> String {
        let Some(utc) = Utc.timestamp_opt(t, 0).single() else {
            return String::new();
        };
        let offset =
            chrono::FixedOffset::east_opt(self.offset_s as i32).unwrap_or(crate::domain::wib());
        let wib = utc.with_timezone(&offset);
        if self.end - self.start <= 86_400 {
            wib.format("%H:%M").to_string()
        } else if self.step(8) >= 86_400 {
            wib.format("%d/%m").to_string()
        } else {
            wib.format("%d/%m %H:%M").to_string()
        }
    }
}

impl Ranged for LocalAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = i64;

    fn map(&self, value: &i64, limit: (i32, i32)) -> i32 {
        let f = (*value - self.start) as f64 / (self.end - self.start) as f64;
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<i64> {
        let max = hint.max_num_points();
        if max == 0 {
            return Vec::new();
        }
        let step = self.step(max);
        // First whole local step at or after the start.
        let local = self.start + self.offset_s;
        let first = local.div_euclid(step) * step
            + if local.rem_euclid(step) == 0 { 0 } else { step }
            - self.offset_s;
        (0..)
            .map(|i| first + i * step)
            .take_while(|t| *t <= self.end)
            .take(max)
            .collect()
    }

    fn range(&self) -> Range<i64> {
        self.start..self.end
    }
}

/// The value range: fixed, or the data and target with a 8 % margin.
fn y_range(spec: &ChartSpec, series: &[Series]) -> Result<(f64, f64), ChartError> {
    if let Some((lo, hi)) = spec.y_range {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(ChartError::BadRange(lo, hi));
        }
        return Ok((lo, hi));
    }
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(spec.target.as_ref().map(|t| t.value));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if hi > lo {
        (hi - lo) * 0.08
    } else {
        lo.abs().max(1.0) * 0.1
    };
    // Counts and percentages never go below zero: do not invent a negative axis.
    let floor = if lo >= 0.0 { 0.0 } else { f64::NEG_INFINITY };
    Ok(((lo - pad).max(floor), hi + pad))
}

/// Draws a line chart over WIB time: one line per series, an optional
/// dashed target line, a legend when there is more than one series.
pub fn line_chart(spec: &ChartSpec, series: &[Series]) -> Result<String, ChartError> {
    if !(120..=7680).contains(&spec.width) || !(80..=4320).contains(&spec.height) {
        return Err(ChartError::BadSize(spec.width, spec.height));
    }
    for s in series {
        if s.points.iter().any(|p| !p.1.is_finite()) {
            return Err(ChartError::NotFinite {
                series: s.name.clone(),
            });
        }
    }
    if let Some(t) = &spec.target {
        if !t.value.is_finite() {
            return Err(ChartError::NotFinite {
                series: t.label.clone(),
            });
        }
    }
    let series: Vec<Series> = series
        .iter()
        .filter(|s| !s.points.is_empty())
        .map(|s| {
            let mut s = s.clone();
            s.points.sort_by_key(|p| p.0);
            s
        })
        .collect();
    let (t0, t1) = series
        .iter()
        .flat_map(|s| [s.points[0].0, s.points[s.points.len() - 1].0])
        .fold(None, |acc: Option<(DateTime<Utc>, DateTime<Utc>)>, t| {
            Some(acc.map_or((t, t), |(a, b)| (a.min(t), b.max(t))))
        })
        .ok_or(ChartError::Empty)?;
    let (y0, y1) = y_range(spec, &series)?;
    let axis = LocalAxis::new(t0.timestamp(), t1.timestamp(), spec.zone);

    // Sizes scale with the chart so that a 4K tile reads like an HD one.
    let u = (spec.height.min(spec.width * 9 / 16) as f64 / 360.0).max(0.6);
    let px = |v: f64| (v * u).round().max(1.0) as u32;
    let ink = Ink::of(spec);
    let text = ink.text;
    let mut svg = String::with_capacity(16 * 1024);
    {
        let root = SVGBackend::with_string(&mut svg, (spec.width, spec.height)).into_drawing_area();
        root.fill(&ink.background).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&spec.title, (FONT, 26.0 * u).into_font().color(&ink.title))
            .margin(px(14.0))
            .margin_right(px(28.0))
            .x_label_area_size(px(52.0))
            .y_label_area_size(px(72.0))
            .build_cartesian_2d(axis.clone(), y0..y1)
            .map_err(drawing)?;
        let x_fmt = |t: &i64| axis.label(*t);
        let y_fmt = |v: &f64| format_value(*v, y1 - y0);
        chart
            .configure_mesh()
            .bold_line_style(ink.grid.stroke_width(px(1.0)))
            .light_line_style(TRANSPARENT)
            .axis_style(text.stroke_width(px(2.0)))
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style((FONT, 18.0 * u).into_font().color(&text))
            .axis_desc_style((FONT, 18.0 * u).into_font().color(&text))
            .x_desc(&spec.x_label)
            .y_desc(&spec.y_label)
            .draw()
            .map_err(drawing)?;

        if let Some(t) = &spec.target {
            let amber = ink.target;
            let (a, b) = (axis.start, axis.end);
            chart
                .draw_series(DashedLineSeries::new(
                    [(a, t.value), (b, t.value)],
                    px(14.0),
                    px(8.0),
                    amber.stroke_width(px(3.0)),
                ))
                .map_err(drawing)?;
            let label_style = (FONT, 18.0 * u).into_font().color(&amber).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Right,
                    plotters::style::text_anchor::VPos::Bottom,
                ),
            );
            chart
                .draw_series(std::iter::once(Text::new(
                    t.label.clone(),
                    (b, t.value),
                    label_style,
                )))
                .map_err(drawing)?;
        }

        for (i, s) in series.iter().enumerate() {
            let color = s
                .color
                .unwrap_or(palette::SERIES[i % palette::SERIES.len()])
                .color();
            let points: Vec<(i64, f64)> = s
                .points
                .iter()
                .map(|(t, v)| (t.timestamp(), v.clamp(y0, y1)))
                .collect();
            if spec.area {
                chart
                    .draw_series(AreaSeries::new(points.iter().copied(), y0, color.mix(0.18)))
                    .map_err(drawing)?;
            }
            // Few points (hours of a shift): each marked, so that one alone shows.
            if points.len() <= MARKED_POINTS {
                let r = px(4.0);
                chart
                    .draw_series(points.iter().map(|p| Circle::new(*p, r, color.filled())))
                    .map_err(drawing)?;
            }
            let drawn = chart
                .draw_series(LineSeries::new(points, color.stroke_width(px(3.0))))
                .map_err(drawing)?;
            if series.len() > 1 {
                let w = px(22.0) as i32;
                drawn.label(&s.name).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + w, y)], color.stroke_width(4))
                });
            }
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(ink.background.mix(0.85))
                .border_style(ink.grid)
                .label_font((FONT, 18.0 * u).into_font().color(&text))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(drawing)?;
        }
        root.present().map_err(drawing)?;
    }
    Ok(named(svg, &spec.title))
}

/// Draws bars over named categories (e.g. answer-time bands): one bar per
/// category and series, side by side; an optional dashed target line.
pub fn bar_chart(
    spec: &ChartSpec,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<String, ChartError> {
    if !(120..=7680).contains(&spec.width) || !(80..=4320).contains(&spec.height) {
        return Err(ChartError::BadSize(spec.width, spec.height));
    }
    if categories.is_empty() || series.is_empty() {
        return Err(ChartError::Empty);
    }
    for (name, values) in series {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ChartError::NotFinite {
                series: name.clone(),
            });
        }
    }
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .chain(spec.target.as_ref().map(|t| t.value))
        .fold(0.0f64, f64::max);
    let (y0, y1) = spec
        .y_range
        .unwrap_or((0.0, if top > 0.0 { top * 1.12 } else { 1.0 }));
    if !(y0.is_finite() && y1.is_finite() && y1 > y0) {
        return Err(ChartError::BadRange(y0, y1));
    }
    let u = (spec.height.min(spec.width * 9 / 16) as f64 / 360.0).max(0.6);
    let px = |v: f64| (v * u).round().max(1.0) as u32;
    let ink = Ink::of(spec);
    let n = categories.len() as i32;
    let k = series.len() as i32;
    // Each category is `k + 1` slots wide: its bars and a gap.
    let slots = n * (k + 1);
    let mut svg = String::with_capacity(16 * 1024);
    {
        let root = SVGBackend::with_string(&mut svg, (spec.width, spec.height)).into_drawing_area();
        root.fill(&ink.background).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&spec.title, (FONT, 26.0 * u).into_font().color(&ink.title))
            .margin(px(14.0))
            .margin_right(px(28.0))
            .x_label_area_size(px(52.0))
            .y_label_area_size(px(72.0))
            .build_cartesian_2d(0..slots, y0..y1)
            .map_err(drawing)?;
        let x_fmt = |slot: &i32| {
            let (c, within) = (slot / (k + 1), slot % (k + 1));
            // One label per category, under its bars' middle.
            if within == k / 2 && c < n {
                categories[c as usize].clone()
            } else {
                String::new()
            }
        };
        let y_fmt = |v: &f64| format_value(*v, y1 - y0);
        chart
            .configure_mesh()
            .bold_line_style(ink.grid.stroke_width(px(1.0)))
            .light_line_style(TRANSPARENT)
            .disable_x_mesh()
            .axis_style(ink.text.stroke_width(px(2.0)))
            .x_labels(slots as usize + 1)
            .y_labels(6)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style((FONT, 16.0 * u).into_font().color(&ink.text))
            .axis_desc_style((FONT, 18.0 * u).into_font().color(&ink.text))
            .x_desc(&spec.x_label)
            .y_desc(&spec.y_label)
            .draw()
            .map_err(drawing)?;
        for (j, (name, values)) in series.iter().enumerate() {
            let color = palette::SERIES[j % palette::SERIES.len()].color();
            let bars = values.iter().enumerate().map(move |(c, v)| {
                let x = c as i32 * (k + 1) + j as i32;
                Rectangle::new([(x, y0), (x + 1, v.clamp(y0, y1))], color.filled())
            });
            let drawn = chart.draw_series(bars).map_err(drawing)?;
            if k > 1 {
                drawn.label(name).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            }
        }
        if let Some(t) = &spec.target {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0, t.value), (slots, t.value)],
                    px(14.0),
                    px(8.0),
                    ink.target.stroke_width(px(3.0)),
                ))
                .map_err(drawing)?;
        }
        if k > 1 {
            chart
                .configure_series_labels()
                .background_style(ink.background.mix(0.85))
                .border_style(ink.grid)
                .label_font((FONT, 18.0 * u).into_font().color(&ink.text))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(drawing)?;
        }
        root.present().map_err(drawing)?;
    }
    Ok(named(svg, &spec.title))
}

/// Names a chart for screen readers and for the wall's `<img alt>`.
fn named(mut svg: String, title: &str) -> String {
    let title = escape_xml(title);
    if let Some(end) = svg.find('>') {
        let mut out = String::with_capacity(svg.len() + title.len() + 48);
        out.push_str(&svg[..end]);
        let _ = write!(
            out,
            " role=\"img\" aria-label=\"{title}\"><title>{title}</title>"
        );
        out.push_str(&svg[end + 1..]);
        svg = out;
    }
    svg
}

/// A value label with as many decimals as the axis span needs.
fn format_value(v: f64, span: f64) -> String {
    let decimals = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$}")
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 08:00..12:00 WIB on 22 Nov 2026, one point every 10 minutes.
    fn morning() -> Series {
        let start = crate::domain::wib()
            .with_ymd_and_hms(2026, 11, 22, 8, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        Series {
            name: "Izin tepat waktu".into(),
            points: (0..=24)
                .map(|i| {
                    (
                        start + chrono::Duration::minutes(10 * i),
                        90.0 + (i % 5) as f64,
                    )
                })
                .collect(),
            color: None,
        }
    }

    #[test]
    fn a_known_series_renders_as_svg_with_wib_ticks_labels_and_target() {
        let mut spec = ChartSpec::new("Perizinan Online & <izin>", "% tepat waktu", 960, 360);
        spec.target = Some(Target {
            value: 95.0,
            label: "target 95 %".into(),
        });
        let svg = line_chart(&spec, &[morning()]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(r#"width="960" height="360""#));
        // Text is text: escaped, in <text> elements, with the system font stack.
        assert!(svg.contains("<title>Perizinan Online &amp; &lt;izin&gt;</title>"));
        assert!(svg.contains("Perizinan Online &amp; &lt;izin&gt;\n</text>"));
        assert!(
            svg.contains("Waktu (WIB)")
                && svg.contains("% tepat waktu")
                && svg.contains("target 95 %")
        );
        assert!(svg.contains("system-ui"));
        // Hour ticks in WIB (08:00 WIB is 01:00 UTC: a UTC axis would print 01:00).
        for h in ["08:00", "09:00", "10:00", "11:00", "12:00"] {
            assert!(
                svg.contains(&format!(">\n{h}\n</text>")) || svg.contains(&format!("{h}\n</text>")),
                "tick {h} missing"
            );
        }
        assert!(!svg.contains("01:00"));
        // One polyline for the series with all 25 points, in the series colour.
        let line = svg
            .lines()
            .find(|l| l.contains("<polyline") && l.contains("#38BDF8"))
            .expect("series polyline");
        let points = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split_whitespace().count(), 25);
        // The dashed target is drawn in amber segments.
        assert!(svg.matches("#FBBF24").count() >= 3);
    }

    #[test]
    fn several_series_get_a_legend_and_distinct_colours() {
        let a = morning();
        let mut b = morning();
        b.name = "Izin diproses".into();
        b.points.reverse(); // unsorted input is sorted
        for p in &mut b.points {
            p.1 -= 10.0;
        }
        let mut spec = ChartSpec::new("Dua seri", "nilai", 800, 300);
        spec.area = true;
        let svg = line_chart(&spec, &[a, b]).unwrap();
        assert!(svg.contains("Izin diproses") && svg.contains("Izin tepat waktu"));
        assert!(svg.contains("#38BDF8") && svg.contains("#F472B6"));
        if let Ok(dir) = std::env::var("KENDALI_CHART_SAMPLES") {
            std::fs::write(format!("{dir}/two-series.svg"), &svg).unwrap();
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let spec = ChartSpec::new("x", "y", 600, 300);
        assert_eq!(line_chart(&spec, &[]), Err(ChartError::Empty));
        let empty = Series {
            name: "e".into(),
            points: vec![],
            color: None,
        };
        assert_eq!(line_chart(&spec, &[empty]), Err(ChartError::Empty));
        let mut nan = morning();
        nan.points[3].1 = f64::NAN;
        assert!(matches!(
            line_chart(&spec, &[nan]),
            Err(ChartError::NotFinite { .. })
        ));
        assert!(matches!(
            line_chart(&ChartSpec::new("x", "y", 10, 10), &[morning()]),
            Err(ChartError::BadSize(10, 10))
        ));
        let mut fixed = spec.clone();
        fixed.y_range = Some((5.0, 5.0));
        assert!(matches!(
            line_chart(&fixed, &[morning()]),
            Err(ChartError::BadRange(..))
        ));
    }

    #[test]
    fn one_point_and_multi_day_spans_still_draw() {
        let spec = ChartSpec::new("Satu titik", "n", 600, 300);
        let mut one = morning();
        one.points.truncate(1);
        assert!(line_chart(&spec, &[one]).unwrap().contains("<svg"));
        let axis = LocalAxis::new(0, 3 * 86_400, crate::domain::Zone::Wib);
        let ticks = axis.key_points(8usize);
        assert!(
            ticks.iter().all(|t| (t + 7 * 3600) % 43_200 == 0),
            "ticks on WIB half-days: {ticks:?}"
        );
        assert!(axis.label(ticks[0]).contains('/'));
    }

    #[test]
    fn a_wita_axis_reads_wita_hours() {
        // 00:00 UTC is 08:00 WITA; ticks every hour fall on whole WITA hours.
        let axis = LocalAxis::new(0, 4 * 3600, crate::domain::Zone::Wita);
        let ticks = axis.key_points(5usize);
        assert_eq!(axis.label(ticks[0]), "08:00");
        let spec = ChartSpec::new("x", "n", 600, 300).in_zone(crate::domain::Zone::Wita);
        assert_eq!(spec.x_label, "Waktu (WITA)");
    }
}
