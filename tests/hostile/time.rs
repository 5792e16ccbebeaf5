//! Findings about time: timeouts and cancels that did not reach a guest
//! blocked in WASI (6), a limit hit after finish() (low).

use crate::*;

/// Finding 6: a guest asleep in WASI is stopped at its time limit, and so
/// is one polling pollables that are never ready.
#[test]
fn h6_the_time_limit_reaches_a_guest_blocked_in_wasi() {
    let a = arena();
    for attack in ["sleep", "poll-forever"] {
        let rec = a.attack(attack, json!({}), spin);
        a.ended(&rec, JobStatus::Failed, "time limit of 2s exceeded");
        assert_eq!(rec.failure, Some(labhost::FailureKind::Timeout));
        assert!(a.reports(&rec, "slept").is_empty() && a.reports(&rec, "polled").is_empty());
    }
}

/// Finding 6: `labhost cancel` from another process reaches a sleeping
/// guest: CANCELLED once the grace is over.
#[test]
fn h6_a_cancel_from_another_process_reaches_a_sleeping_guest() {
    let a = arena();
    let lab = &a.lab;
    let mut spec = lab.spec(&a.evil, json!({"attack": "sleep"}));
    spec.sandbox.limits.grace = Duration::from_millis(500);
    let _guard = lab.rt.enter();
    let mut handle = lab.host.start(spec).unwrap();
    let mut events = handle.events();
    lab.rt.block_on(async {
        loop {
            match events.recv().await {
                Ok(JobEvent::Log { message, .. }) if message == "probe: attack sleep" => break,
                Ok(JobEvent::Ended { .. }) => panic!("ended before the cancel"),
                _ => {}
            }
        }
    });
    let out = lab.cli(&["cancel", &handle.id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        labhost_tests::stderr(&out)
    );
    let rec = lab.rt.block_on(handle.wait()).unwrap();
    a.ended(
        &rec,
        JobStatus::Cancelled,
        "cancelled; the plugin did not stop within the 0.5s grace period",
    );
}

/// Low: a limit hit after finish() keeps its reason in the log (the status
/// set by finish() is final).
#[test]
fn a_limit_hit_after_finish_keeps_its_reason() {
    let a = arena();
    let rec = a.attack("finish-then-spin", json!({}), spin);
    a.ended(&rec, JobStatus::Complete, "finished early");
    assert!(
        a.lab
            .log(&rec)
            .contains(" HOST   after the job ended COMPLETE: time limit of 2s exceeded\n"),
        "{}",
        a.tail(&rec)
    );
    let rec = a.attack("finish-then-scratch", json!({}), |s| {
        s.sandbox.limits.scratch_bytes = 16 << 20;
    });
    a.ended(&rec, JobStatus::Complete, "finished early");
    assert!(
        a.lab.log(&rec).contains(
            " HOST   after the job ended COMPLETE: scratch limit of 16 MiB exceeded (/work holds "
        ),
        "{}",
        a.tail(&rec)
    );
}
