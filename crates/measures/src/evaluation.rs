//! Program evaluation (CLINICAL.md section 8): enrolled patients' emergency visits and
//! admissions in the 12 months before and after enrolment, against a comparison group of
//! patients who were eligible but not enrolled, matched on age, sex, prior-year utilisation
//! and severity, each given their match's enrolment date. The effect is the
//! difference-in-differences of events per patient-year, with a bootstrap 95% interval over
//! matched pairs (deterministic by seed).

use time::{Date, Duration};

/// One patient's history, as the evaluation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub patient: String,
    pub age: i32,
    pub female: bool,
    /// Eligible for the program (for the rescue pack: has COPD).
    pub eligible: bool,
    pub enrolled: Option<Date>,
    /// Emergency visits and admissions: (day, related to the program's condition).
    pub events: Vec<(Date, bool)>,
}

impl History {
    /// All emergency visits and admissions in [from, to).
    fn count(&self, from: Date, to: Date) -> f64 {
        self.events
            .iter()
            .filter(|(d, _)| *d >= from && *d < to)
            .count() as f64
    }

    fn related(&self, from: Date, to: Date) -> f64 {
        self.events
            .iter()
            .filter(|(d, r)| *r && *d >= from && *d < to)
            .count() as f64
    }

    /// (before, after) program-related events around a day, 12 months each side: the
    /// outcome (for the rescue pack, COPD emergency visits and admissions).
    fn around(&self, day: Date) -> (f64, f64) {
        let year = Duration::days(365);
        (self.related(day - year, day), self.related(day, day + year))
    }
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Enrolled patients with a full year of data on both sides who found a match.
    pub pairs: usize,
    pub enrolled_before: f64,
    pub enrolled_after: f64,
    pub comparison_before: f64,
    pub comparison_after: f64,
    /// Difference-in-differences, events per patient-year (negative: fewer with the program).
    pub effect: f64,
    pub interval: (f64, f64),
    /// The effect relative to the enrolled group's rate before enrolment.
    pub relative: f64,
    pub relative_interval: (f64, f64),
}

impl Evaluation {
    /// A reading in plain language.
    pub fn reading(&self) -> String {
        let pct = |x: f64| format!("{:.0}%", (x * 100.0).abs());
        let (lo, hi) = self.interval;
        if hi < 0.0 {
            format!(
                "Enrolled patients had fewer emergency visits and admissions than matched patients who were not enrolled: about {} fewer (95% interval {} to {} fewer).",
                pct(self.relative),
                pct(self.relative_interval.1),
                pct(self.relative_interval.0)
            )
        } else if lo > 0.0 {
            format!(
                "Enrolled patients had more emergency visits and admissions than matched patients: about {} more.",
                pct(self.relative)
            )
        } else {
            "No clear difference: the 95% interval includes no effect, so this data cannot tell whether the program changed emergency visits and admissions.".to_string()
        }
    }
}

/// A deterministic generator for the bootstrap.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

/// One enrolled patient and their match: (before, after) events of each.
struct Pair {
    enrolled: (f64, f64),
    comparison: (f64, f64),
}

/// The four means (enrolled before and after, comparison before and after) and the
/// difference-in-differences.
fn did<'a>(pairs: impl ExactSizeIterator<Item = &'a Pair>) -> (f64, f64, f64, f64, f64) {
    let n = pairs.len() as f64;
    let (mut eb, mut ea, mut cb, mut ca) = (0.0, 0.0, 0.0, 0.0);
    for p in pairs {
        eb += p.enrolled.0;
        ea += p.enrolled.1;
        cb += p.comparison.0;
        ca += p.comparison.1;
    }
    let (eb, ea, cb, ca) = (eb / n, ea / n, cb / n, ca / n);
    (eb, ea, cb, ca, (ea - eb) - (ca - cb))
}

/// The matching key: sex, age band, prior-year events (capped) and severity (prior-year
/// events related to the program's condition, capped).
fn key(h: &History, day: Date) -> (bool, i32, u32, u32) {
    let year = Duration::days(365);
    let prior = h.count(day - year, day).min(3.0) as u32;
    let severity = h.related(day - year, day).min(2.0) as u32;
    (h.female, h.age / 10, prior, severity)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Evaluates a program over histories whose data ends on `data_end` (enrolments later than
/// a year before it have no full year after and are left out). `None` when no enrolled
/// patient finds a match.
pub fn evaluate(
    histories: &[History],
    data_end: Date,
    seed: u64,
    rounds: usize,
) -> Option<Evaluation> {
    let year = Duration::days(365);
    let data_start = histories
        .iter()
        .flat_map(|h| h.events.iter().map(|(d, _)| *d))
        .min()?;
    let enrolled: Vec<&History> = histories
        .iter()
        .filter(|h| {
            h.enrolled
                .is_some_and(|d| d - year >= data_start && d + year <= data_end)
        })
        .collect();
    let mut pool: Vec<&History> = histories
        .iter()
        .filter(|h| h.eligible && h.enrolled.is_none())
        .collect();
    // Nearest match without replacement on the exact key; each enrolled patient is matched
    // to the first unused comparison patient with the same key at the enrolment day.
    let mut pairs: Vec<Pair> = Vec::new();
    for e in &enrolled {
        let Some(day) = e.enrolled else { continue };
        let k = key(e, day);
        if let Some(pos) = pool.iter().position(|c| key(c, day) == k) {
            let c = pool.swap_remove(pos);
            pairs.push(Pair {
                enrolled: e.around(day),
                comparison: c.around(day),
            });
        }
    }
    if pairs.is_empty() {
        return None;
    }
    let (eb, ea, cb, ca, effect) = did(pairs.iter());
    let mut rng = SplitMix(seed);
    let mut effects = Vec::with_capacity(rounds);
    let mut relatives = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let sample: Vec<&Pair> = (0..pairs.len())
            .map(|_| &pairs[rng.below(pairs.len())])
            .collect();
        let (b, _, _, _, d) = did(sample.into_iter());
        effects.push(d);
        relatives.push(if b > 0.0 { d / b } else { 0.0 });
    }
    effects.sort_by(f64::total_cmp);
    relatives.sort_by(f64::total_cmp);
    Some(Evaluation {
        pairs: pairs.len(),
        enrolled_before: eb,
        enrolled_after: ea,
        comparison_before: cb,
        comparison_after: ca,
        effect,
        interval: (percentile(&effects, 0.025), percentile(&effects, 0.975)),
        relative: if eb > 0.0 { effect / eb } else { 0.0 },
        relative_interval: (percentile(&relatives, 0.025), percentile(&relatives, 0.975)),
    })
}
