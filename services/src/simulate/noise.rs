//! Metric noise from a seeded generator of our own (SplitMix64), so that a seed gives the same run on
//! every machine and every version of every dependency.

#[derive(Debug, Clone)]
pub struct Noise {
    state: u64,
    /// Standard deviation, as a share of the value.
    share: f64,
}

impl Noise {
    pub fn new(seed: u64, share: f64) -> Self {
        Self { state: seed, share }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    pub fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// `value` with multiplicative Gaussian noise, never below 0. Always draws, so that every policy's
    /// run sees the same noise whatever it measures.
    pub fn apply(&mut self, value: f64) -> f64 {
        let draw = self.gaussian();
        (value * (1.0 + self.share * draw)).max(0.0)
    }
}
