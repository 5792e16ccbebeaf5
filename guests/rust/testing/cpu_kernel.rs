//! The CPU-bound kernel of the benchmark: sparse logistic-regression SGD
//! (the shape of the trainer's inner loop) on synthetic data. Plain Rust
//! with no dependencies, compiled both into the probe guest (scenario
//! `cpu`) and natively into `examples/bench.rs` (`#[path]` includes this
//! file), so the two run exactly the same code.

/// Train for `steps` SGD steps of `batch` samples over `features`
/// features; returns the final mean loss (a checksum that keeps the work
/// from being optimised away).
pub fn train(steps: u64, features: usize, batch: usize) -> f64 {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let truth: Vec<f64> = (0..features)
        .map(|i| if i % 3 == 0 { 0.5 } else { -0.25 })
        .collect();
    let mut weights = vec![0.0f64; features];
    let mut bias = 0.0f64;
    let (lr, l2) = (0.1, 1e-4);
    let mut loss = 0.0;
    let mut samples: Vec<(Vec<(usize, f64)>, f64)> = Vec::with_capacity(batch);
    for _ in 0..steps {
        samples.clear();
        for _ in 0..batch {
            let feats: Vec<(usize, f64)> = (0..16)
                .map(|_| ((next() as usize) % features, 1.0 + (next() % 3) as f64))
                .collect();
            let z: f64 = feats.iter().map(|&(i, x)| truth[i] * x).sum();
            samples.push((feats, if z > 0.0 { 1.0 } else { 0.0 }));
        }
        loss = 0.0;
        let n = batch as f64;
        for (feats, y) in &samples {
            let z = bias + feats.iter().map(|&(i, x)| weights[i] * x).sum::<f64>();
            loss += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
            let residual = (1.0 / (1.0 + (-z).exp()) - y) / n;
            for &(i, x) in feats {
                weights[i] -= lr * (residual * x + l2 * weights[i]);
            }
            bias -= lr * residual;
        }
        loss /= n;
    }
    loss
}
