//! `coproduce evaluate --program rescue-pack`: a program's effect on emergency visits and
//! admissions, enrolled against matched patients who were not enrolled.

use anyhow::{Context, Result};
use coproduce_app::Store;
use coproduce_core::Clock;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The program, by its code (enrolment is a CarePlan with this category).
    #[arg(long)]
    pub program: String,
    /// The last day of data (YYYY-MM-DD); enrolments need a full year after them.
    #[arg(long)]
    pub end: String,
    /// Seed of the bootstrap, so a run can be repeated exactly.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write an SVG plot of the two groups before and after enrolment here.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
}

/// The two groups' event rates before and after enrolment, as an SVG line chart.
pub fn plot(e: &coproduce_measures::evaluation::Evaluation, program: &str) -> Result<String> {
    use plotters::prelude::*;
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
        root.fill(&WHITE).map_err(|x| anyhow::anyhow!("{x}"))?;
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
            .map_err(|x| anyhow::anyhow!("{x}"))?;
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
            .map_err(|x| anyhow::anyhow!("{x}"))?;
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
                .map_err(|x| anyhow::anyhow!("{x}"))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3))
                });
            chart
                .draw_series(
                    [(0.0, before), (1.0, after)].map(|p| Circle::new(p, 5, colour.filled())),
                )
                .map_err(|x| anyhow::anyhow!("{x}"))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|x| anyhow::anyhow!("{x}"))?;
        root.present().map_err(|x| anyhow::anyhow!("{x}"))?;
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

pub async fn evaluate(store: &Store, clock: &Arc<dyn Clock>, a: EvaluateArgs) -> Result<()> {
    let end = time::Date::parse(
        &a.end,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .with_context(|| format!("--end '{}' is not a date like 2026-12-31", a.end))?;
    let result =
        coproduce_app::evaluation::run(store, clock, "cli:evaluate", &a.program, end, a.seed)
            .await?;
    let Some(e) = result else {
        println!(
            "No enrolled patient with a full year before and after enrolment found a match; nothing to compare."
        );
        return Ok(());
    };
    println!(
        "program {}: {} enrolled patients, each with a matched comparison patient",
        a.program, e.pairs
    );
    println!("  events per patient-year (program-related emergency visits and admissions):");
    println!(
        "    enrolled:   {:.3} in the 12 months before, {:.3} after",
        e.enrolled_before, e.enrolled_after
    );
    println!(
        "    comparison: {:.3} before, {:.3} after",
        e.comparison_before, e.comparison_after
    );
    println!(
        "  difference-in-differences: {:+.3} per patient-year (95% bootstrap interval {:+.3} to {:+.3}); relative {:+.0}% ({:+.0}% to {:+.0}%)",
        e.effect,
        e.interval.0,
        e.interval.1,
        e.relative * 100.0,
        e.relative_interval.0 * 100.0,
        e.relative_interval.1 * 100.0
    );
    println!("  {}", e.reading());
    if let Some(path) = &a.plot {
        std::fs::write(path, plot(&e, &a.program)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("  wrote the plot to {}", path.display());
    }
    Ok(())
}
