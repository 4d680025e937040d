//! Deterministic draws for the generated populations: the same (seed, index) gives the same
//! record, whatever else is generated.

/// SplitMix64: a fixed sequence of numbers from a seed.
pub(crate) struct Draw(u64);

impl Draw {
    pub(crate) fn new(seed: u64, index: u64) -> Self {
        Draw(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An exponential draw with this mean.
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    pub(crate) fn pick<'a, T>(&mut self, weighted: &'a [(T, f64)]) -> &'a T {
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (v, w) in weighted {
            if x < *w {
                return v;
            }
            x -= w;
        }
        &weighted[weighted.len() - 1].0
    }
}

/// A generated patient's preferred language, age band and sex, at a safety-net clinic's mix
/// (modelled): English 55%, Spanish 30%, Brazilian Portuguese 7%, Haitian Creole 8%.
pub(crate) fn demographics(d: &mut Draw) -> (String, String, String) {
    const LANGUAGES: [(&str, f64); 4] = [("en", 0.55), ("es", 0.30), ("pt-BR", 0.07), ("ht", 0.08)];
    const AGE_BANDS: [(&str, f64); 4] = [
        ("18-44", 0.35),
        ("45-64", 0.40),
        ("65-74", 0.15),
        ("75+", 0.10),
    ];
    const SEXES: [(&str, f64); 2] = [("female", 0.53), ("male", 0.47)];
    (
        (*d.pick(&LANGUAGES)).to_string(),
        (*d.pick(&AGE_BANDS)).to_string(),
        (*d.pick(&SEXES)).to_string(),
    )
}
