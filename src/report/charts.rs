//! Charts as inline SVG, drawn with plotters (its SVG backend: no fonts or system libraries).
//!
//! Every chart is readable in greyscale (black and greys, different dash patterns and marker
//! shapes rather than colours) and carries its text alternative: a `<title>` and a `<desc>`
//! that states the numbers, referenced by `aria-labelledby`. Values arrive after disclosure
//! control; a suppressed value (`None`) is drawn as a gap and named in the description.

use anyhow::{Result, anyhow};
use plotters::element::ErrorBar;
use plotters::prelude::*;
use plotters::series::DashedLineSeries;
use serde::Serialize;

/// One rendered chart.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// The `<svg>` element, ready to inline.
    pub svg: String,
    /// Short title (also the SVG's `<title>`).
    pub title: String,
    /// Text alternative with the figures (also the SVG's `<desc>`).
    pub description: String,
}

/// A line of a trend chart; `None` where the value is missing or suppressed.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A bar of a ranked chart.
#[derive(Debug, Clone)]
pub struct RankedBar {
    pub label: String,
    pub value: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// Drawn dark: the unit the report is about.
    pub highlight: bool,
}

const WIDTH: u32 = 720;
const INK: RGBColor = RGBColor(0, 0, 0);
const GREYS: [RGBColor; 4] = [
    RGBColor(0, 0, 0),
    RGBColor(90, 90, 90),
    RGBColor(140, 140, 140),
    RGBColor(60, 60, 60),
];
const LIGHT: RGBColor = RGBColor(190, 190, 190);
const DARK: RGBColor = RGBColor(70, 70, 70);

fn draw_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("chart drawing failed: {e}")
}

/// Trend lines over periods (x labels), percentages on y.
pub fn trend(title: &str, y_label: &str, x_labels: &[String], series: &[Series]) -> Result<Chart> {
    let mut svg = String::new();
    let height = 320;
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .collect();
    let y_max = all.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let y_top = (y_max * 1.1).min(100.0).max(y_max);
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let n = x_labels.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y_top)
            .map_err(draw_error)?;
        let labels = x_labels.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(230, 230, 230))
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y_label)
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(draw_error)?;
        for (i, s) in series.iter().enumerate() {
            let colour = GREYS[i % GREYS.len()];
            // Runs of present values, so a missing period is a gap and not a false line.
            for run in runs(&s.values) {
                let style = colour.stroke_width(2);
                let points = run.iter().map(|(x, y)| (*x as f64, *y));
                if i % 2 == 0 {
                    chart
                        .draw_series(LineSeries::new(points, style))
                        .map_err(draw_error)?;
                } else {
                    chart
                        .draw_series(DashedLineSeries::new(points, 8, 5, style))
                        .map_err(draw_error)?;
                }
            }
            let points: Vec<(f64, f64)> = s
                .values
                .iter()
                .enumerate()
                .filter_map(|(x, v)| v.map(|v| (x as f64, v)))
                .collect();
            let marked = match i % 3 {
                0 => chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled()))),
                1 => chart.draw_series(
                    points
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 5, colour.filled())),
                ),
                _ => chart.draw_series(
                    points
                        .iter()
                        .map(|&p| Cross::new(p, 5, colour.stroke_width(2))),
                ),
            }
            .map_err(draw_error)?;
            marked.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(INK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    let mut description = format!("{title}. ");
    for s in series {
        let parts: Vec<String> = x_labels
            .iter()
            .zip(&s.values)
            .map(|(x, v)| {
                format!(
                    "{x}: {}",
                    v.map_or("not shown".into(), |v| format!("{v:.1}"))
                )
            })
            .collect();
        description.push_str(&format!("{}: {}. ", s.name, parts.join("; ")));
    }
    Ok(finish(svg, title, description.trim_end()))
}

fn runs(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => out.last_mut().expect("one run").push((i, *v)),
            None => out.push(Vec::new()),
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// The funnel from population to sustained engagement: one bar per stage, each labelled with
/// its count and its share of the first stage. `None` = suppressed.
pub fn funnel(title: &str, stages: &[(String, Option<f64>)]) -> Result<Chart> {
    let bars: Vec<(String, Option<f64>, String)> = {
        let base = stages.first().and_then(|(_, v)| *v).filter(|v| *v > 0.0);
        stages
            .iter()
            .map(|(label, v)| {
                let text = match (v, base) {
                    (Some(v), Some(b)) => format!("{} ({:.0}%)", thousands(*v), v / b * 100.0),
                    (Some(v), None) => thousands(*v),
                    (None, _) => "suppressed".into(),
                };
                (label.clone(), *v, text)
            })
            .collect()
    };
    let svg = horizontal_bars(&bars, None, None)?;
    let description = format!(
        "{title}. {}.",
        bars.iter()
            .map(|(l, _, t)| format!("{l}: {t}"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(finish(svg, title, &description))
}

fn thousands(v: f64) -> String {
    crate::report::disclosure::group_thousands(v.round().max(0.0) as u64)
}

/// Units ranked by value (largest first), with their 95% intervals and an optional reference
/// line (the LA value).
pub fn ranked_bars(
    title: &str,
    unit: &str,
    bars: &[RankedBar],
    reference: Option<(&str, f64)>,
) -> Result<Chart> {
    let mut sorted = bars.to_vec();
    sorted.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.label.cmp(&b.label)));
    let rows: Vec<(String, Option<f64>, String)> = sorted
        .iter()
        .map(|b| {
            let interval = match (b.lower, b.upper) {
                (Some(l), Some(u)) => format!(" ({l:.1}–{u:.1})"),
                _ => String::new(),
            };
            (
                b.label.clone(),
                Some(b.value),
                format!("{:.1}{unit}{interval}", b.value),
            )
        })
        .collect();
    let highlights: Vec<bool> = sorted.iter().map(|b| b.highlight).collect();
    let intervals: Vec<(Option<f64>, Option<f64>)> =
        sorted.iter().map(|b| (b.lower, b.upper)).collect();
    let svg = horizontal_bars_with(&rows, Some(&highlights), Some(&intervals), reference)?;
    let mut description = format!("{title}, highest first. ");
    for (i, (label, _, text)) in rows.iter().enumerate() {
        description.push_str(&format!("{}. {label}: {text}. ", i + 1));
    }
    if let Some((name, v)) = reference {
        description.push_str(&format!("Reference line: {name} {v:.1}{unit}."));
    }
    Ok(finish(svg, title, description.trim_end()))
}

fn horizontal_bars(
    rows: &[(String, Option<f64>, String)],
    highlights: Option<&[bool]>,
    intervals: Option<&[(Option<f64>, Option<f64>)]>,
) -> Result<String> {
    horizontal_bars_with(rows, highlights, intervals, None)
}

fn horizontal_bars_with(
    rows: &[(String, Option<f64>, String)],
    highlights: Option<&[bool]>,
    intervals: Option<&[(Option<f64>, Option<f64>)]>,
    reference: Option<(&str, f64)>,
) -> Result<String> {
    let mut svg = String::new();
    let n = rows.len().max(1);
    let height = (40 + 28 * n as u32).max(120);
    let x_max = rows
        .iter()
        .filter_map(|r| r.1)
        .chain(intervals.into_iter().flatten().filter_map(|i| i.1))
        .chain(reference.map(|r| r.1))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let label_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(4) as u32 * 7 + 12;
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(24)
            .y_label_area_size(label_width.min(260))
            // Room on the right for the value labels.
            .build_cartesian_2d(0f64..x_max * 1.45, -0.5f64..(n as f64 - 0.5))
            .map_err(draw_error)?;
        let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_x_mesh()
            .y_labels(n)
            .y_label_formatter(&|y| {
                // Row 0 at the top.
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                    names[n - 1 - i as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_labels(6)
            .draw()
            .map_err(draw_error)?;
        for (i, (_, value, text)) in rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let dark = highlights.is_some_and(|h| h[i]);
            let fill = if dark { DARK } else { LIGHT };
            if let Some(v) = value {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y - 0.32), (*v, y + 0.32)],
                        fill.filled(),
                    )))
                    .map_err(draw_error)?;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y - 0.32), (*v, y + 0.32)],
                        INK.stroke_width(1),
                    )))
                    .map_err(draw_error)?;
            }
            if let Some((Some(l), Some(u))) = intervals.map(|iv| iv[i])
                && let Some(v) = value
            {
                chart
                    .draw_series(std::iter::once(ErrorBar::new_horizontal(
                        y,
                        l,
                        *v,
                        u,
                        INK.stroke_width(2),
                        10,
                    )))
                    .map_err(draw_error)?;
            }
            let right = intervals
                .and_then(|iv| iv[i].1)
                .into_iter()
                .chain(*value)
                .fold(0.0_f64, f64::max);
            chart
                .draw_series(std::iter::once(Text::new(
                    text.clone(),
                    (right + x_max * 0.02, y + 0.12),
                    ("sans-serif", 13).into_font().color(&INK),
                )))
                .map_err(draw_error)?;
        }
        if let Some((name, v)) = reference {
            chart
                .draw_series(DashedLineSeries::new(
                    [(v, -0.5), (v, n as f64 - 0.5)],
                    6,
                    4,
                    INK.stroke_width(2),
                ))
                .map_err(draw_error)?
                .label(format!("{name} {v:.1}"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], INK.stroke_width(2)));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(INK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// Vertical bars per deprivation decile (1 = most deprived), percentages; `None` =
/// suppressed or no children.
pub fn decile_bars(title: &str, y_label: &str, bars: &[(String, Option<f64>)]) -> Result<Chart> {
    let mut svg = String::new();
    let n = bars.len().max(1);
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..100.0)
            .map_err(draw_error)?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(230, 230, 230))
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("Deprivation decile (1 = most deprived 10% in England)")
            .y_desc(y_label)
            .draw()
            .map_err(draw_error)?;
        for (i, (_, v)) in bars.iter().enumerate() {
            let x = i as f64;
            match v {
                Some(v) => {
                    // The three most deprived deciles dark: the 30% the framework targets.
                    let fill = if i < 3 { DARK } else { LIGHT };
                    chart
                        .draw_series([
                            Rectangle::new([(x - 0.35, 0.0), (x + 0.35, *v)], fill.filled()),
                            Rectangle::new([(x - 0.35, 0.0), (x + 0.35, *v)], INK.stroke_width(1)),
                        ])
                        .map_err(draw_error)?;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("{v:.0}"),
                            (x - 0.2, (*v + 6.0).min(98.0)),
                            ("sans-serif", 12).into_font().color(&INK),
                        )))
                        .map_err(draw_error)?;
                }
                None => {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            "–".to_string(),
                            (x - 0.05, 4.0),
                            ("sans-serif", 14).into_font().color(&INK),
                        )))
                        .map_err(draw_error)?;
                }
            }
        }
        root.present().map_err(draw_error)?;
    }
    let description = format!(
        "{title}. {}.",
        bars.iter()
            .map(|(l, v)| format!(
                "decile {l}: {}",
                v.map_or("not shown".into(), |v| format!("{v:.1}%"))
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(finish(svg, title, &description))
}

/// Gives the SVG its text alternative and lets it scale with the page.
fn finish(svg: String, title: &str, description: &str) -> Chart {
    // Ids from the title so the output is deterministic (golden files).
    let id: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let id = format!(
        "chart-{:x}-{}",
        fxhash(&format!("{title}{description}")),
        &id[..id.len().min(24)]
    );
    let accessible = match svg.find('>') {
        Some(end) if svg.starts_with("<svg") => format!(
            "{} role=\"img\" aria-labelledby=\"{id}-t {id}-d\" style=\"max-width:100%;height:auto\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>{}",
            &svg[..end],
            xml_escape(title),
            xml_escape(description),
            &svg[end + 1..]
        ),
        _ => svg,
    };
    Chart {
        svg: accessible,
        title: title.to_string(),
        description: description.to_string(),
    }
}

fn fxhash(s: &str) -> u32 {
    // FNV-1a: a stable short id, not security.
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// Escapes text for XML/HTML content and attributes.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_text_alternatives() {
        let chart = funnel(
            "From population to sustained engagement",
            &[
                ("Children under 5".into(), Some(412.0)),
                ("Registered".into(), Some(338.0)),
                ("Seen".into(), None),
            ],
        )
        .unwrap();
        assert!(chart.svg.starts_with("<svg"));
        assert!(chart.svg.contains("role=\"img\""));
        assert!(chart.svg.contains("<title id="));
        assert_eq!(
            chart.description,
            "From population to sustained engagement. Children under 5: 412 (100%); \
             Registered: 338 (82%); Seen: suppressed."
        );
        // No colour other than greys: readable in greyscale.
        for hex in chart.svg.split('#').skip(1) {
            let hex = &hex[..6.min(hex.len())];
            if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let (r, g, b) = (&hex[0..2], &hex[2..4], &hex[4..6]);
                assert!(r == g && g == b, "non-grey colour #{hex}");
            }
        }
    }

    #[test]
    fn trend_gaps_and_description() {
        let chart = trend(
            "Registration rate",
            "%",
            &["2024 Q1".into(), "2024 Q2".into(), "2024 Q3".into()],
            &[Series {
                name: "Centre".into(),
                values: vec![Some(50.0), None, Some(60.0)],
            }],
        )
        .unwrap();
        assert!(chart.description.contains("2024 Q2: not shown"));
        assert_eq!(runs(&[Some(1.0), None, Some(2.0), Some(3.0)]).len(), 2);
    }

    #[test]
    fn ranked_bars_sort_highest_first() {
        let chart = ranked_bars(
            "Registration rate by centre",
            "%",
            &[
                RankedBar {
                    label: "B".into(),
                    value: 40.0,
                    lower: Some(30.0),
                    upper: Some(50.0),
                    highlight: false,
                },
                RankedBar {
                    label: "A".into(),
                    value: 70.0,
                    lower: Some(60.0),
                    upper: Some(80.0),
                    highlight: true,
                },
            ],
            Some(("LA", 55.0)),
        )
        .unwrap();
        assert!(
            chart
                .description
                .contains("1. A: 70.0% (60.0–80.0). 2. B: 40.0%")
        );
        assert!(chart.description.ends_with("Reference line: LA 55.0%."));
    }
}
