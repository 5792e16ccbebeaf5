//! `llm-judge`: score question/answer pairs with a judge model (MT-Bench
//! style LLM-as-a-judge) through an OpenAI-compatible chat-completions API.
//!
//! It reads a granted dataset of `{"question", "answer"}` rows (`data.jsonl`,
//! as `llm-datagen` saves it), asks the judge model at `endpoint` to rate each
//! answer from 1 to 10 (`Rating: N`), and stores the eval table `judgement`:
//! input = question, output = answer, score = rating / 10, the judge's
//! explanation and raw rating as extra columns. The mean score and the
//! number of unparseable verdicts become the job's scores.
//!
//! The endpoint must be granted (`--allow-http URL`); credentials are
//! injected by the host (`--http-header 'Authorization: Bearer
//! {secret:KEY}'`), so the plugin never holds a key.

use std::io::BufRead;

use lab::http::Request;
use serde::Deserialize;
use serde_json::json;

pub struct LlmJudge;

lab::export_plugin!(LlmJudge);

const SYSTEM_PROMPT: &str = "You are a strict grader. Rate how well the answer answers the question \
on a scale of 1 to 10. Reply with one line `Rating: N` followed by one sentence of explanation.";

#[derive(Deserialize)]
struct Params {
    endpoint: String,
    model: String,
    dataset: String,
    limit: u64,
}

#[derive(Deserialize)]
struct Row {
    question: String,
    answer: String,
}

impl lab::Plugin for LlmJudge {
    fn describe() -> lab::Describe {
        use lab::ParamType::{Integer, Text};
        lab::Describe::new(
            "llm-judge",
            lab::Kind::Evaluator,
            "Scores question/answer pairs with a judge model over an OpenAI-compatible API",
        )
        .param("endpoint", Text, None, "Base URL of the chat-completions API, e.g. http://127.0.0.1:8000/v1")
        .param("model", Text, Some("\"judge\""), "Judge model name")
        .param("dataset", Text, Some("\"qa\""), "Dataset of question/answer rows (name or id)")
        .param("limit", Integer, Some("0"), "Judge at most this many rows (0: all)")
    }

    fn run() -> lab::Result<()> {
        let p: Params = lab::config_as()?;
        lab::update_status("loading", None, None)?;
        let info = lab::get_dataset(&p.dataset)?;
        let dir = lab::open_dataset(&info.id)?;
        let file = std::fs::File::open(dir.join("data.jsonl"))?;
        let mut rows = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            rows.push(serde_json::from_str::<Row>(&line)?);
            if p.limit > 0 && rows.len() as u64 >= p.limit {
                break;
            }
        }
        if rows.is_empty() {
            return lab::fail(&format!("dataset {} has no question/answer rows", info.id));
        }
        lab::update_status("judging", Some(&json!({"judge_model": p.model, "dataset": info.id})), None)?;
        let url = format!("{}/chat/completions", p.endpoint.trim_end_matches('/'));
        let mut table = Vec::with_capacity(rows.len());
        let mut unparsed = 0u64;
        for (i, row) in rows.iter().enumerate() {
            if lab::should_stop() {
                return lab::fail("stopped on request");
            }
            let verdict = ask(&url, &p.model, row)?;
            let (score, rating) = match rating(&verdict) {
                Some(r) => (r as f64 / 10.0, json!(r)),
                None => {
                    unparsed += 1;
                    lab::warn(&format!("row {i}: no `Rating: N` in the judge's reply"));
                    (0.0, serde_json::Value::Null)
                }
            };
            table.push(lab::EvalRow {
                input: row.question.clone(),
                output: row.answer.clone(),
                expected: None,
                score,
                extra: json!({"rating": rating, "verdict": verdict}).to_string(),
            });
            let done = i as u64 + 1;
            lab::report(
                100.0 * done as f32 / rows.len() as f32,
                Some(&format!("judged {done}/{}", rows.len())),
                &[("score", score)],
                Some(done),
            )?;
        }
        lab::update_status("saving", None, None)?;
        let summary = lab::save_eval("judgement", &table, lab::TableFormat::Csv)?;
        lab::finish(
            &format!("judged {} answers, mean score {:.3}", summary.count, summary.mean_score),
            &[("mean_score", summary.mean_score), ("unparsed", unparsed as f64)],
        )
    }
}

/// One verdict from the judge.
fn ask(url: &str, model: &str, row: &Row) -> lab::Result<String> {
    let resp = Request::post(url)
        .json(&json!({
            "model": model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": format!("Question: {}\nAnswer: {}", row.question, row.answer)},
            ],
        }))?
        .send()?
        .error_for_status()?;
    let body: serde_json::Value = resp.json()?;
    body["choices"][0]["message"]["content"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| lab::Error::msg(format!("{url}: not a chat-completions response")))
}

/// N from the first `Rating: N` (1..=10) of a verdict.
fn rating(verdict: &str) -> Option<u8> {
    let at = verdict.to_ascii_lowercase().find("rating:")?;
    let digits: String = verdict[at + 7..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|r| (1..=10).contains(r))
}
