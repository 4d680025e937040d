//! Plots as SVG, drawn on the server with plotters: a trend per measure with the target band,
//! and the panel's distribution of latest HbA1c. Each comes with a text alternative, which
//! the page puts beside it (screen readers read that, not the drawing).

use coproduce_app::care::Reading;
use coproduce_core::care::readings::{Measure, ReadingValue, TargetRange};
use plotters::prelude::*;
use time::OffsetDateTime;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 280;
const LINE: RGBColor = RGBColor(11, 83, 148);
const SECOND: RGBColor = RGBColor(180, 95, 6);
const BAND: RGBColor = RGBColor(56, 142, 60);

fn days(t: OffsetDateTime) -> f64 {
    t.unix_timestamp() as f64 / 86_400.0
}

fn date_label(d: f64) -> String {
    OffsetDateTime::from_unix_timestamp((d * 86_400.0) as i64)
        .map(|t| {
            let date = t.date();
            format!(
                "{}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            )
        })
        .unwrap_or_default()
}

/// Labels for a trend chart, in the page's language.
#[derive(Debug, Clone)]
pub struct TrendLabels {
    pub title: String,
    pub unit: String,
    pub date: String,
    /// The reader's language writes a decimal comma ("7,5").
    pub decimal_comma: bool,
}

/// The trend of one measure over time (both numbers for blood pressure), with the target
/// band shaded. Readings may come in any order.
pub fn trend(
    measure: Measure,
    readings: &[&Reading],
    target: Option<TargetRange>,
    labels: &TrendLabels,
) -> Result<String, String> {
    let mut points: Vec<(f64, ReadingValue)> =
        readings.iter().map(|r| (days(r.at), r.value)).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Ok(String::new());
    };
    let (x0, x1) = (first.0 - 1.0, last.0 + 1.0);
    let mut values: Vec<f64> = points
        .iter()
        .flat_map(|(_, v)| match *v {
            ReadingValue::Single(x) => vec![x],
            ReadingValue::Pressure {
                systolic,
                diastolic,
            } => vec![systolic, diastolic],
        })
        .collect();
    if let Some(t) = target {
        values.extend(t.low);
        values.extend(t.high);
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.1).max(match measure {
        Measure::HbA1c => 0.5,
        Measure::Weight => 1.0,
        _ => 5.0,
    });
    let (y0, y1) = ((lo - pad).max(0.0), hi + pad);
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&labels.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_labels(5)
            .y_labels(6)
            .x_label_formatter(&|d| date_label(*d))
            .y_label_formatter(&|v| {
                let n = format!("{v:.prec$}", prec = measure.decimals());
                if labels.decimal_comma {
                    n.replace('.', ",")
                } else {
                    n
                }
            })
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .y_desc(labels.unit.as_str())
            .x_desc(labels.date.as_str())
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| err(&e))?;
        if let Some(t) = target {
            let (b0, b1) = (t.low.unwrap_or(y0).max(y0), t.high.unwrap_or(y1).min(y1));
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, b0), (x1, b1)],
                    BAND.mix(0.15).filled(),
                )))
                .map_err(|e| err(&e))?;
        }
        let main = points.iter().map(|(x, v)| (*x, v.headline()));
        chart
            .draw_series(LineSeries::new(main.clone(), LINE.stroke_width(2)))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(main.map(|p| Circle::new(p, 3, LINE.filled())))
            .map_err(|e| err(&e))?;
        if measure == Measure::BloodPressure {
            let dia = points.iter().filter_map(|(x, v)| match *v {
                ReadingValue::Pressure { diastolic, .. } => Some((*x, diastolic)),
                ReadingValue::Single(_) => None,
            });
            chart
                .draw_series(LineSeries::new(dia.clone(), SECOND.stroke_width(2)))
                .map_err(|e| err(&e))?;
            chart
                .draw_series(dia.map(|p| TriangleMarker::new(p, 4, SECOND.filled())))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(accessible(svg))
}

/// The drawing is decoration for screen readers: the page's text alternative says it.
fn accessible(svg: String) -> String {
    svg.replacen(
        "<svg ",
        "<svg aria-hidden=\"true\" focusable=\"false\" class=\"chart\" ",
        1,
    )
}

/// The bands of the panel's HbA1c distribution (%), as CMS122 and the ADA targets read them.
pub const HBA1C_BANDS: &[(f64, f64, &str)] = &[
    (0.0, 7.0, "< 7"),
    (7.0, 8.0, "7–8"),
    (8.0, 9.0, "8–9"),
    (9.0, f64::INFINITY, "> 9"),
];

/// How many values fall in each band.
pub fn band_counts(values: &[f64]) -> Vec<usize> {
    HBA1C_BANDS
        .iter()
        .map(|(lo, hi, _)| values.iter().filter(|v| **v >= *lo && **v < *hi).count())
        .collect()
}

/// A bar chart of the panel's latest HbA1c by band.
pub fn hba1c_distribution(values: &[f64], title: &str, y_desc: &str) -> Result<String, String> {
    let counts = band_counts(values);
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.15;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let n = HBA1C_BANDS.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n, 0f64..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(HBA1C_BANDS.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 && i < HBA1C_BANDS.len() {
                    format!("{} %", HBA1C_BANDS[i].2)
                } else {
                    String::new()
                }
            })
            .y_desc(y_desc)
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x = i as f64;
                let colour = if i == 0 { BAND } else { LINE };
                Rectangle::new([(x + 0.15, 0.0), (x + 0.85, *c as f64)], colour.filled())
            }))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(accessible(svg))
}

/// The two groups' event rates before and after enrolment, as an SVG line chart.
pub fn evaluation(
    e: &coproduce_measures::evaluation::Evaluation,
    program: &str,
) -> Result<String, String> {
    let top = [
        e.enrolled_before,
        e.enrolled_after,
        e.comparison_before,
        e.comparison_after,
    ]
    .into_iter()
    .fold(0.0_f64, f64::max)
        * 1.25;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| x.to_string())?;
        let title = format!(
            "{program}: events per patient-year, difference-in-differences {:+.2} ({:+.0}%)",
            e.effect,
            e.relative * 100.0
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.2f64..1.2f64, 0f64..top.max(0.1))
            .map_err(|x| x.to_string())?;
        chart
            .configure_mesh()
            .x_labels(3)
            .x_label_formatter(&|x| {
                if x.abs() < 0.05 {
                    "12 months before".to_string()
                } else if (x - 1.0).abs() < 0.05 {
                    "12 months after".to_string()
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE)
            .y_desc("events per patient-year")
            .draw()
            .map_err(|x| x.to_string())?;
        let groups = [
            (
                format!("enrolled (n = {})", e.pairs),
                e.enrolled_before,
                e.enrolled_after,
                RGBColor(11, 83, 148),
            ),
            (
                format!("matched comparison (n = {})", e.pairs),
                e.comparison_before,
                e.comparison_after,
                RGBColor(180, 95, 6),
            ),
        ];
        for (label, before, after, colour) in groups {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, before), (1.0, after)],
                    colour.stroke_width(3),
                ))
                .map_err(|x| x.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3))
                });
            chart
                .draw_series(
                    [(0.0, before), (1.0, after)].map(|p| Circle::new(p, 5, colour.filled())),
                )
                .map_err(|x| x.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|x| x.to_string())?;
        root.present().map_err(|x| x.to_string())?;
    }
    // The drawing's text alternative, for screen readers.
    let alt = format!(
        "{program}: enrolled patients went from {:.2} to {:.2} events per patient-year, matched comparison patients from {:.2} to {:.2}.",
        e.enrolled_before, e.enrolled_after, e.comparison_before, e.comparison_after
    );
    Ok(svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{alt}\" "),
        1,
    ))
}

/// The label of the category at axis position `x` (a whole number), none between them.
fn label_at<'a>(x: &f64, mut labels: impl Iterator<Item = &'a String>) -> String {
    let i = x.round();
    if (x - i).abs() < 0.01 && i >= 0.0 {
        labels.nth(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Emergency visits and admissions per 1,000 patient-years by month: `(month, ED, admissions)`.
pub fn utilisation_trend(
    months: &[(String, f64, f64)],
    title: &str,
    labels: (&str, &str),
) -> Result<String, String> {
    let top = months
        .iter()
        .map(|(_, a, b)| a.max(*b))
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.2;
    let n = months.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| x.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..(n as f64 - 0.5).max(0.5), 0f64..top)
            .map_err(|x| x.to_string())?;
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&|x| label_at(x, months.iter().map(|m| &m.0)))
            .light_line_style(WHITE)
            .draw()
            .map_err(|x| x.to_string())?;
        for (label, colour, pick) in [(labels.0, LINE, 0usize), (labels.1, SECOND, 1usize)] {
            let points: Vec<(f64, f64)> = months
                .iter()
                .enumerate()
                .map(|(i, (_, a, b))| (i as f64, if pick == 0 { *a } else { *b }))
                .collect();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(|x| x.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|x| x.to_string())?;
        root.present().map_err(|x| x.to_string())?;
    }
    Ok(accessible(svg))
}

/// A chart of horizontal bars, one row per label with the first at the top (segment i
/// holds row n - 1 - i), over `0..x_max`; `percent` writes the x axis as shares.
type RowsChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordusize>,
    >,
>;

fn rows_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    title: &str,
    labels: &[String],
    x_max: f64,
    percent: bool,
) -> Result<RowsChart<'a, 'b>, String> {
    let n = labels.len();
    root.fill(&WHITE).map_err(|x| x.to_string())?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(24)
        .y_label_area_size(190)
        .build_cartesian_2d(0f64..x_max, (0..n.max(1)).into_segmented())
        .map_err(|x| x.to_string())?;
    let y_label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels
            .get(n.wrapping_sub(1 + i))
            .cloned()
            .unwrap_or_default(),
        _ => String::new(),
    };
    let percent_label = |v: &f64| format!("{v:.0}%");
    let mut mesh = chart.configure_mesh();
    mesh.disable_y_mesh()
        .y_labels(n.max(1))
        .y_label_formatter(&y_label)
        .light_line_style(WHITE);
    if percent {
        mesh.x_label_formatter(&percent_label);
    }
    mesh.draw().map_err(|x| x.to_string())?;
    Ok(chart)
}

/// The bar of row segment `i` from `from` to `to`.
fn row_bar(
    i: usize,
    from: f64,
    to: f64,
    colour: RGBColor,
) -> Rectangle<(f64, SegmentValue<usize>)> {
    let mut r = Rectangle::new(
        [
            (from, SegmentValue::Exact(i)),
            (to, SegmentValue::Exact(i + 1)),
        ],
        colour.filled(),
    );
    r.set_margin(5, 5, 0, 0);
    r
}

/// Room for the caption and the axis however few the rows (one bar alone had none).
fn rows_height(n: usize) -> u32 {
    90 + 28 * n.max(1) as u32
}

/// Horizontal bars, one per labelled value, on a scale from 0 to `max` (100 for shares in
/// percent), each with its figure written at its end as `unit` says.
pub fn bars(items: &[(String, f64)], max: f64, title: &str, unit: &str) -> Result<String, String> {
    let n = items.len();
    let top = items.iter().map(|(_, v)| *v).fold(max, f64::max).max(1.0);
    let labels: Vec<String> = items.iter().map(|(l, _)| l.clone()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, rows_height(n))).into_drawing_area();
        let mut chart = rows_chart(&root, title, &labels, top * 1.15, false)?;
        chart
            .draw_series(
                items
                    .iter()
                    .enumerate()
                    .map(|(k, (_, v))| row_bar(n - 1 - k, 0.0, *v, LINE)),
            )
            .map_err(|x| x.to_string())?;
        chart
            .draw_series(items.iter().enumerate().map(|(k, (_, v))| {
                Text::new(
                    format!("{v:.0}{unit}"),
                    (*v + top * 0.01, SegmentValue::CenterOf(n - 1 - k)),
                    ("sans-serif", 12),
                )
            }))
            .map_err(|x| x.to_string())?;
        root.present().map_err(|x| x.to_string())?;
    }
    Ok(accessible(svg))
}

/// A measure's rate by period with its 95% interval: `(period, rate, low, high)`, shares.
pub fn measure_trend(points: &[(String, f64, f64, f64)], title: &str) -> Result<String, String> {
    let n = points.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| x.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..100f64)
            .map_err(|x| x.to_string())?;
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| label_at(x, points.iter().map(|p| &p.0)))
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .light_line_style(WHITE)
            .draw()
            .map_err(|x| x.to_string())?;
        chart
            .draw_series(points.iter().enumerate().map(|(i, (_, _, lo, hi))| {
                PathElement::new(
                    [(i as f64, lo * 100.0), (i as f64, hi * 100.0)],
                    SECOND.stroke_width(2),
                )
            }))
            .map_err(|x| x.to_string())?;
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .enumerate()
                    .map(|(i, (_, rate, _, _))| (i as f64, rate * 100.0)),
                LINE.stroke_width(2),
            ))
            .map_err(|x| x.to_string())?;
        chart
            .draw_series(points.iter().enumerate().map(|(i, (_, rate, _, _))| {
                Circle::new((i as f64, rate * 100.0), 4, LINE.filled())
            }))
            .map_err(|x| x.to_string())?;
        root.present().map_err(|x| x.to_string())?;
    }
    Ok(accessible(svg))
}

/// The coproduction spectrum: one bar per setting, from low to high patient agency, split
/// into the share the patient's side owns and the team's; an empty setting is an empty row.
/// The page puts the figures beside it as text.
pub fn spectrum(
    rows: &[(String, coproduce_core::partnership::Ownership)],
    title: &str,
    patient: &str,
    team: &str,
) -> Result<String, String> {
    let n = rows.len();
    let height = rows_height(n);
    let labels: Vec<String> = rows.iter().map(|(l, _)| l.clone()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let mut chart = rows_chart(&root, title, &labels, 100.0, true)?;
        for (k, (_, o)) in rows.iter().enumerate() {
            let Some(share) = o.patient_pct() else {
                continue;
            };
            let i = n - 1 - k;
            chart
                .draw_series([
                    row_bar(i, 0.0, share, SECOND),
                    row_bar(i, share, 100.0, LINE),
                ])
                .map_err(|x| x.to_string())?;
        }
        // The legend: which colour is whose.
        let legend = |x: i32, colour: RGBColor, text: &str| -> Result<(), String> {
            root.draw(&Rectangle::new(
                [(x, height as i32 - 22), (x + 14, height as i32 - 8)],
                colour.filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Text::new(
                text.to_string(),
                (x + 20, height as i32 - 21),
                ("sans-serif", 12),
            ))
            .map_err(|e| e.to_string())
        };
        legend(202, SECOND, patient)?;
        legend(420, LINE, team)?;
        root.present().map_err(|x| x.to_string())?;
    }
    Ok(accessible(svg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn reading(at: OffsetDateTime, v: ReadingValue) -> Reading {
        Reading {
            id: "r".into(),
            version: 1,
            patient: "p".into(),
            measure: Measure::HbA1c,
            value: v,
            at,
            by: String::new(),
            by_ref: None,
            unreviewed: false,
            review: None,
        }
    }

    #[test]
    fn a_trend_has_its_title_axis_labels_and_a_target_band() {
        let rs = [
            reading(datetime!(2026-01-10 9:00 UTC), ReadingValue::Single(8.4)),
            reading(datetime!(2026-04-10 9:00 UTC), ReadingValue::Single(7.6)),
            reading(datetime!(2026-07-10 9:00 UTC), ReadingValue::Single(6.9)),
        ];
        let refs: Vec<&Reading> = rs.iter().collect();
        let labels = TrendLabels {
            title: "HbA1c".into(),
            unit: "%".into(),
            date: "Date".into(),
            decimal_comma: false,
        };
        let svg = trend(
            Measure::HbA1c,
            &refs,
            Some(TargetRange::below(7.0)),
            &labels,
        )
        .unwrap();
        assert!(
            svg.starts_with("<svg aria-hidden=\"true\""),
            "{}",
            &svg[..80]
        );
        assert!(
            svg.contains(">\nHbA1c\n<") || svg.contains(">HbA1c<"),
            "title"
        );
        assert!(svg.contains("2026-"), "dated x axis");
        assert!(
            svg.contains("fill-opacity=\"0.15\"") || svg.contains("opacity=\"0.15\""),
            "band"
        );
        assert!(svg.contains("<polyline"), "a line");
    }

    #[test]
    fn an_empty_series_draws_nothing() {
        let labels = TrendLabels {
            title: "x".into(),
            unit: "%".into(),
            date: "d".into(),
            decimal_comma: false,
        };
        assert_eq!(trend(Measure::HbA1c, &[], None, &labels).unwrap(), "");
    }

    #[test]
    fn the_distribution_counts_each_band() {
        assert_eq!(
            band_counts(&[6.1, 6.9, 7.0, 8.5, 9.0, 12.0]),
            vec![2, 1, 1, 2]
        );
        let svg = hba1c_distribution(&[6.1, 7.5], "Latest HbA1c", "patients").unwrap();
        assert!(
            svg.contains("&lt; 7 %") || svg.contains("< 7 %"),
            "band labels"
        );
    }
    #[test]
    fn the_spectrum_splits_each_setting_between_the_two_sides() {
        use coproduce_core::partnership::Ownership;
        let rows = vec![
            ("Critical care".to_string(), Ownership::default()),
            (
                "At home".to_string(),
                Ownership {
                    patient: 3,
                    team: 1,
                },
            ),
        ];
        let svg = spectrum(&rows, "Who does what", "Patient and family", "Care team").unwrap();
        if let Ok(dir) = std::env::var("COPRODUCE_CHART_DUMP") {
            std::fs::write(format!("{dir}/spectrum.svg"), &svg).unwrap();
        }
        assert!(svg.contains("Who does what") && svg.contains("At home"));
        assert!(
            svg.contains("Patient and family") && svg.contains("Care team"),
            "legend"
        );
        // One setting with activities: its two parts; the empty one draws no bar.
        let filled = |c: &str| svg.matches(&format!("fill=\"{c}\"")).count();
        assert_eq!(filled("#B45F06"), 2, "the patient's part and its legend");
    }
}
