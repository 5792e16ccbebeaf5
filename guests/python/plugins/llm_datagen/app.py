"""`llm-datagen`: synthetic question/answer pairs from an LLM (a "teacher").

A generator written the way a Transformer Lab script is (`from lab import
lab`, a main function), using the calls new in lab:api@0.2.0: outbound HTTP
(`lab.http`), status stages (`lab.update_status`) and progress with metrics
(`lab.update_progress(progress, metrics=..., step=...)`).

For each topic of `topics` and k in 1..`pairs_per_topic` it asks the
OpenAI-compatible chat-completions API at `endpoint` for one pair, as a JSON
object {"question": ..., "answer": ...}. A reply that is not such an object
is logged as a warning and counted in `rejected`. The pairs are saved as
dataset `qa` (rows {"topic", "question", "answer"}) with provenance
metadata (generator, model, endpoint, temperature, prompt version).

The endpoint must be granted to the job (`labhost run --allow-http URL`).
The plugin never sends credentials: an `Authorization` header is injected by
the host from the grant (`--http-header`), so the key never enters the
sandbox. A response status other than 200 fails the job.
"""

import json

from lab import lab

PROMPT_VERSION = 1
SYSTEM_PROMPT = (
    "You write one question/answer pair for a training dataset. Reply with a JSON "
    'object {"question": ..., "answer": ...} and nothing else.'
)
DEFAULT_TOPICS = ["gradient descent", "overfitting and regularization", "attention in transformers"]


def ask(url, model, temperature, topic, k, n):
    """One chat completion; returns the reply text. Fails the job (raises
    lab.Error) on a status other than 200 or a malformed response body."""
    body = {
        "model": model,
        "temperature": temperature,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Topic: {topic}. Pair {k} of {n}."},
        ],
    }
    r = lab.http.post(url, json=body)
    if r.status_code != 200:
        raise lab.Error(f"POST {url} returned HTTP status {r.status_code}: {r.text[:200]}")
    try:
        return r.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError) as e:
        raise lab.Error(f"POST {url}: not a chat-completions response ({e!r})") from None


def parse_pair(content):
    """(question, answer) from the reply, or None if it is not a JSON object
    with non-empty string `question` and `answer`."""
    if not isinstance(content, str):
        return None
    try:
        value = json.loads(content)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    q, a = value.get("question"), value.get("answer")
    if not (isinstance(q, str) and q.strip() and isinstance(a, str) and a.strip()):
        return None
    return q.strip(), a.strip()


def generate():
    lab.init()
    config = lab.get_config()
    endpoint = str(config["endpoint"])
    model = config.get("model", "teacher")
    topics = config.get("topics", DEFAULT_TOPICS)
    n = int(config.get("pairs_per_topic", 2))
    temperature = float(config.get("temperature", 0.0))
    if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
        raise lab.Error("topics must be a JSON list of non-empty strings")
    if n < 1:
        raise lab.Error("pairs_per_topic must be at least 1")
    url = f"{endpoint.rstrip('/')}/chat/completions"

    lab.update_status("generating")
    lab.log(f"asking {model} at {url} for {n} pair(s) on each of {len(topics)} topic(s)")
    rows, rejected = [], 0
    total, step = len(topics) * n, 0
    for topic in topics:
        for k in range(1, n + 1):
            if lab.should_stop():
                lab.error(f"stopped after {step} of {total} requests")
                return
            content = ask(url, model, temperature, topic, k, n)
            pair = parse_pair(content)
            step += 1
            if pair is None:
                rejected += 1
                lab.warn(f"topic {topic!r} pair {k}: reply is not a JSON "
                         f"{{question, answer}} object, skipped: {str(content)[:120]!r}")
            else:
                rows.append({"topic": topic, "question": pair[0], "answer": pair[1]})
            lab.update_progress(90.0 * step / total, f"{topic} {k}/{n}",
                                metrics={"pairs": float(len(rows)), "rejected": float(rejected)},
                                step=step)

    lab.update_status("saving")
    if not rows:
        lab.warn(f"no usable pair in {total} replies: saving an empty dataset")
    provenance = {"generator": "llm-datagen", "model": model, "endpoint": endpoint,
                  "temperature": temperature, "prompt_version": PROMPT_VERSION}
    d = lab.save_dataset(rows, "qa", provenance)
    lab.update_progress(100.0, "done")
    lab.finish(f"saved {len(rows)} pairs as dataset {d.id} ({rejected} rejected)",
               score={"pairs": float(len(rows)), "rejected": float(rejected)})


WitWorld = lab.export(
    generate,
    name="llm-datagen",
    kind="generator",
    description="Synthetic question/answer pairs from an OpenAI-compatible LLM endpoint",
    params=[
        lab.param("endpoint", "text", None,
                  "Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 "
                  "(grant it with --allow-http)", required=True),
        lab.param("model", "text", "teacher", "Model name sent to the API"),
        lab.param("topics", "json", DEFAULT_TOPICS, "Topics: a JSON list of strings"),
        lab.param("pairs_per_topic", "integer", 2, "Pairs asked for per topic"),
        lab.param("temperature", "number", 0.0, "Sampling temperature"),
    ],
)
