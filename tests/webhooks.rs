//! Signed webhooks into `labhost serve` (the real binary on 127.0.0.1):
//! Labelbox's training-service contract (`GET /models`, `POST /model_run`
//! with `X-Hub-Signature: sha1=`) and the Standard Webhooks launch
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`), with their
//! attacks: missing, wrong and tampered signatures, a stale timestamp, a
//! replayed id (also after a restart), an oversized body, and a rotated
//! secret.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use labhost_tests::{guest, Lab, Server};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

const LB_SECRET: &str = "labelbox-shared-secret";
const KEY_NEW: &[u8] = b"the new launch key, 32 bytes....";
const KEY_OLD: &[u8] = b"the old launch key, 32 bytes....";

fn whsec(key: &[u8]) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn hub_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(LB_SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha1={hex}")
}

fn standard_signature(key: &[u8], id: &str, ts: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn error(resp: reqwest::blocking::Response) -> (StatusCode, String) {
    let status = resp.status();
    let v: Value = serde_json::from_str(&resp.text().unwrap()).unwrap();
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

/// A workspace with the probe uploaded, and its server with the secrets.
fn setup() -> (Lab, Server, String) {
    let lab = Lab::new();
    let (new, old) = (whsec(KEY_NEW), whsec(KEY_OLD));
    let env = [
        ("LABELBOX_WEBHOOK_SECRET", LB_SECRET),
        ("LABHOST_WEBHOOK_SECRET", new.as_str()),
        ("LABHOST_WEBHOOK_SECRET_PREVIOUS", old.as_str()),
    ];
    let server = Server::start_with_env(&lab, &env);
    let wasm = std::fs::read(guest("rust", "probe")).unwrap();
    let digest = blake3::hash(&wasm).to_hex().to_string();
    let resp = Client::new()
        .post(server.url("/api/v1/plugins"))
        .body(wasm)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    (lab, server, digest)
}

fn wait_ended(lab: &Lab, id: &str) -> labhost::JobRecord {
    for _ in 0..600 {
        let (rec, _) = lab.ws().find_job(id).unwrap();
        if rec.status.is_terminal() {
            return rec;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("job {id} did not end within 30 s");
}

#[test]
fn labelbox_lists_models_and_launches_a_model_run() {
    let (lab, server, _) = setup();
    let http = Client::new();
    let models = server.url("/webhooks/labelbox/models");
    let resp = http
        .get(&models)
        .header("x-hub-signature", hub_signature(b""))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().unwrap(), json!({"probe": {}}));
    assert_eq!(
        error(http.get(&models).send().unwrap()),
        (
            StatusCode::UNAUTHORIZED,
            "missing X-Hub-Signature: sha1=<hex>".into()
        )
    );
    assert_eq!(
        error(
            http.get(&models)
                .header("x-hub-signature", hub_signature(b"x"))
                .send()
                .unwrap()
        ),
        (
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature does not match the body".into()
        )
    );

    let run = server.url("/webhooks/labelbox/model_run");
    let body = serde_json::to_vec(&json!({
        "modelType": "probe",
        "modelRunId": "9e3f331a-551b-0e24-6ab5-f69855df64ea",
        "modelId": "9e3f51f8-5e62-0cab-360e-c0443dcc3008",
        "organizationId": "cjhfn5y6s0pk507024nz1ocys",
    }))
    .unwrap();
    let resp = http
        .post(&run)
        .header("x-hub-signature", hub_signature(&body))
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = wait_ended(&lab, &id);
    assert_eq!(rec.message.as_deref(), Some("all calls made"));
    assert_eq!(
        rec.metadata["modelRunId"],
        "9e3f331a-551b-0e24-6ab5-f69855df64ea"
    );
    assert_eq!(rec.metadata["organizationId"], "cjhfn5y6s0pk507024nz1ocys");
    assert_eq!(rec.metadata["source"], "labelbox");

    // The body changed after signing; an unknown model; a huge body.
    let mut tampered = body.clone();
    tampered[15] ^= 1;
    assert_eq!(
        error(
            http.post(&run)
                .header("x-hub-signature", hub_signature(&body))
                .body(tampered)
                .send()
                .unwrap()
        ),
        (
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature does not match the body".into()
        )
    );
    let other =
        serde_json::to_vec(&json!({"modelType": "bounding_box", "modelRunId": "r"})).unwrap();
    assert_eq!(
        error(
            http.post(&run)
                .header("x-hub-signature", hub_signature(&other))
                .body(other)
                .send()
                .unwrap()
        ),
        (
            StatusCode::NOT_FOUND,
            "no plugin named `bounding_box` (GET /models lists them)".into()
        )
    );
    let huge = vec![b' '; (1 << 20) + 1];
    assert_eq!(
        error(
            http.post(&run)
                .header("x-hub-signature", hub_signature(&huge))
                .body(huge)
                .send()
                .unwrap()
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "a webhook body is at most 1048576 bytes".into()
        )
    );
    assert_eq!(
        lab.ws().jobs(None).unwrap().len(),
        1,
        "only the signed run launched a job"
    );
}

#[test]
fn standard_webhooks_launch_refuses_stale_replayed_and_forged_requests() {
    let (lab, server, digest) = setup();
    let http = Client::new();
    let url = server.url("/webhooks/launch");
    let body = serde_json::to_vec(&json!({"plugin": digest, "config": {"count": 2}})).unwrap();
    let send = |id: &str, ts: i64, sig: String, body: &[u8]| {
        http.post(&url)
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.to_vec())
            .send()
            .unwrap()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let resp = send(
        "msg_1",
        now,
        standard_signature(KEY_NEW, "msg_1", now, &body),
        &body,
    );
    assert_eq!(resp.status(), StatusCode::CREATED);
    let rec: Value = resp.json().unwrap();
    let rec = wait_ended(&lab, rec["id"].as_str().unwrap());
    assert_eq!(
        (rec.message.as_deref(), rec.metadata["webhook_id"].as_str()),
        (Some("all calls made"), Some("msg_1"))
    );

    // Signed with the previous secret during a rotation: accepted.
    let resp = send(
        "msg_2",
        now,
        standard_signature(KEY_OLD, "msg_2", now, &body),
        &body,
    );
    assert_eq!(resp.status(), StatusCode::CREATED);

    assert_eq!(
        error(send(
            "msg_1",
            now,
            standard_signature(KEY_NEW, "msg_1", now, &body),
            &body
        )),
        (
            StatusCode::CONFLICT,
            "webhook id `msg_1` was already used".into()
        )
    );
    let stale = now - 600;
    assert_eq!(
        error(send(
            "msg_3",
            stale,
            standard_signature(KEY_NEW, "msg_3", stale, &body),
            &body
        )),
        (
            StatusCode::UNAUTHORIZED,
            "webhook-timestamp is outside the 5 minute window".into()
        )
    );
    assert_eq!(
        error(send(
            "msg_4",
            now,
            standard_signature(b"someone else's key", "msg_4", now, &body),
            &body
        )),
        (
            StatusCode::UNAUTHORIZED,
            "webhook-signature does not match".into()
        )
    );
    // A signature for another id, and a body that grants itself HTTP.
    assert_eq!(
        error(send(
            "msg_5",
            now,
            standard_signature(KEY_NEW, "msg_other", now, &body),
            &body
        )),
        (
            StatusCode::UNAUTHORIZED,
            "webhook-signature does not match".into()
        )
    );
    let grab =
        serde_json::to_vec(&json!({"plugin": digest, "allow_http": ["http://127.0.0.1:9/"]}))
            .unwrap();
    assert_eq!(
        error(send("msg_6", now, standard_signature(KEY_NEW, "msg_6", now, &grab), &grab)),
        (StatusCode::FORBIDDEN, "granting HTTP endpoints or secrets needs a token with the `admin` scope (this one has `run`)".into())
    );
    let missing = http.post(&url).body(body.clone()).send().unwrap();
    assert_eq!(
        error(missing),
        (StatusCode::UNAUTHORIZED, "missing webhook-id".into())
    );

    // A restart does not forget the ids it has seen.
    drop(server);
    let (new, old) = (whsec(KEY_NEW), whsec(KEY_OLD));
    let server = Server::start_with_env(
        &lab,
        &[
            ("LABHOST_WEBHOOK_SECRET", new.as_str()),
            ("LABHOST_WEBHOOK_SECRET_PREVIOUS", old.as_str()),
        ],
    );
    let resp = http
        .post(server.url("/webhooks/launch"))
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", now.to_string())
        .header(
            "webhook-signature",
            standard_signature(KEY_NEW, "msg_1", now, &body),
        )
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(
        error(resp),
        (
            StatusCode::CONFLICT,
            "webhook id `msg_1` was already used".into()
        )
    );
    let jobs = lab.ws().jobs(None).unwrap();
    assert_eq!(jobs.len(), 2, "msg_1 and msg_2 only");
}
