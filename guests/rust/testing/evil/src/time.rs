//! Time attacks: sleeping and polling instead of spinning (the epoch
//! deadline never fires in a host call), and what a job does after it has
//! ended (the host must still end the instance).

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use crate::filesystem::scratch_forever;
use crate::{count, flag, outcome, report};

/// Sleep `count` seconds (0: an hour) through WASI.
pub fn sleep() -> lab::Result<()> {
    let secs = match count() {
        0 => 3600,
        n => n,
    };
    std::thread::sleep(Duration::from_secs(secs));
    flag("slept");
    lab::finish("slept", &[])
}

/// Block in `wasi:io/poll.poll` on two clocks an hour away.
pub fn poll_forever() -> lab::Result<()> {
    use wasi::clocks::monotonic_clock::subscribe_duration;
    const HOUR_NS: u64 = 3600 * 1_000_000_000;
    let a = subscribe_duration(HOUR_NS);
    let b = subscribe_duration(HOUR_NS);
    let ready = wasi::io::poll::poll(&[&a, &b]);
    black_box(ready);
    flag("polled");
    lab::finish("polled", &[])
}

pub fn after_finish() -> lab::Result<()> {
    lab::finish("finished first", &[("a", 1.0)])?;
    report("fail", outcome(&lab::fail("failing after finish")));
    report("finish", outcome(&lab::finish("finishing again", &[])));
    report("progress", outcome(&lab::progress(50.0)));
    report("metric", outcome(&lab::metric("late", 1.0, None)));
    std::fs::write(lab::work_dir().join("late.txt"), "late")?;
    report(
        "artifact",
        outcome(&lab::save_artifact("/work/late.txt", None)),
    );
    Err(lab::Error::msg("returned an error after finishing"))
}

/// Finish, then never return.
pub fn finish_then_spin() -> lab::Result<()> {
    lab::finish("finished early", &[])?;
    loop {
        black_box(0u64);
    }
}

/// Finish, then fill the scratch dir forever.
pub fn finish_then_scratch() -> lab::Result<()> {
    lab::finish("finished early", &[])?;
    let mut f = std::fs::File::create(lab::work_dir().join("fill"))?;
    scratch_forever(|chunk| f.write_all(chunk).map_err(|e| format!("{:?}", e.kind())))
}
