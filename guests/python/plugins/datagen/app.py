"""`sentiment-datagen-py`: generate a small synthetic sentiment dataset.

The Python port of guests/rust/plugins/datagen, written the way a
Transformer Lab script is (`from lab import lab`, a main function). Same
kind, parameters and output: for the same parameters it saves the *same*
dataset, byte for byte, so it can feed the Rust trainer:

Each row is a short sentence about a film built from word lists, e.g.
"the movie was great and fun" (label 1) or "a dull boring plot" (label 0),
with neutral filler words mixed in. A `noise` fraction of the labels is
flipped so the task is not perfectly separable. The last `test_fraction` of
the rows form the "test" split, the others "train"; the dataset's
`data.jsonl` holds one {"text", "label", "split"} object per line.
Everything is derived from `seed` with the splitmix64 generator.
"""

import math

from lab import lab

MASK = (1 << 64) - 1


class SplitMix64:
    """The splitmix64 generator, bit-exact with the Rust plugin's."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def next_f64(self):
        """A uniform float in [0, 1)."""
        return (self.next_u64() >> 11) / float(1 << 53)

    def chance(self, p):
        """True with probability `p`."""
        return self.next_f64() < p

    def below(self, n):
        """A uniform integer in 0..n."""
        return self.next_u64() % n

    def pick(self, items):
        return items[self.below(len(items))]


SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the story",
            "the soundtrack", "the ending", "the cast", "the script", "the director"]
NOUNS = ["movie", "film", "plot", "story", "performance", "script", "ending"]
VERBS = ["was", "is", "felt", "seemed", "looked"]
POSITIVE = ["great", "fun", "wonderful", "brilliant", "moving", "charming",
            "excellent", "delightful", "clever", "beautiful", "gripping", "superb"]
NEGATIVE = ["dull", "boring", "awful", "terrible", "bland", "clumsy", "tedious",
            "weak", "predictable", "painful", "messy", "forgettable"]
# Sentiment-free words, so that not every token carries signal.
OPENERS = ["honestly", "overall", "i think", "to be fair", "in the end", "well"]
INTENSIFIERS = ["really", "quite", "very", "rather", "so"]


def sentence(rng, positive):
    """One short review sentence with the given true sentiment."""
    adjectives = POSITIVE if positive else NEGATIVE
    words = []
    if rng.chance(0.3):
        words.append(rng.pick(OPENERS))
    shape = rng.below(3)
    if shape == 0:  # "the movie was great and fun"
        words += [rng.pick(SUBJECTS), rng.pick(VERBS), rng.pick(adjectives)]
        words += ["and", rng.pick(adjectives)]
    elif shape == 1:  # "the plot felt really clever"
        words += [rng.pick(SUBJECTS), rng.pick(VERBS)]
        words += [rng.pick(INTENSIFIERS), rng.pick(adjectives)]
    else:  # "a dull boring plot"
        words += ["a", rng.pick(adjectives), rng.pick(adjectives), rng.pick(NOUNS)]
    return " ".join(words)


def round_half_away(x):
    """Rust's f64::round for x >= 0 (Python's round() rounds half to even)."""
    r = math.floor(x)
    return int(r + 1 if x - r >= 0.5 else r)


def generate(rows, seed, noise, test_rows):
    """All rows and the counts (train, test, positive, flipped)."""
    rng = SplitMix64(seed)
    train = rows - test_rows
    out, positive_labels, flipped = [], 0, 0
    for i in range(rows):
        positive = rng.chance(0.5)
        text = sentence(rng, positive)
        flip = rng.chance(noise)
        label = int(positive != flip)
        flipped += flip
        positive_labels += label
        out.append({"text": text, "label": label, "split": "train" if i < train else "test"})
    return out, (train, test_rows, positive_labels, flipped)


def main():
    lab.init()
    config = lab.get_config()
    rows, seed = config["rows"], config["seed"]
    noise, test_fraction = config["noise"], config["test_fraction"]
    name = config["dataset_name"]
    if not 1 <= rows <= 1_000_000:
        raise lab.Error("rows must be between 1 and 1000000")
    if not 0.0 <= noise <= 0.5:
        raise lab.Error("noise must be between 0 and 0.5")
    if not 0.0 <= test_fraction < 1.0:
        raise lab.Error("test_fraction must be at least 0 and below 1")
    test_rows = round_half_away(rows * test_fraction)
    if test_rows >= rows:
        raise lab.Error("test_fraction leaves no rows for the train split")
    if seed < 0:
        raise lab.Error("seed must not be negative")
    lab.log(f"generating {rows} rows (seed {seed}, noise {noise}, test fraction {test_fraction})")

    lab.update_progress(0, "generating")
    data, (train, test, positive, flipped) = generate(rows, seed, noise, test_rows)
    lab.log(f"{train} train / {test} test rows, {positive} positive, {flipped} labels flipped")
    positive_fraction = positive / len(data)
    lab.log_metric("positive_fraction", positive_fraction)
    lab.log_metric("flipped_labels", flipped)

    lab.update_progress(80, "saving")
    info = lab.save_dataset(
        data,
        name,
        additional_metadata={
            "generator": "sentiment-datagen-py",
            "seed": seed,
            "rows": rows,
            "noise": noise,
            "test_fraction": test_fraction,
            "train_rows": train,
            "test_rows": test,
            "positive_fraction": positive_fraction,
        },
        description=f"Synthetic film-review sentiment: {len(data)} rows, label 1 = positive",
    )
    lab.log(f"saved dataset {info.id} ({info.files.size} bytes)")
    lab.update_progress(100, "done")
    lab.finish(f"generated {len(data)} rows as dataset {info.id}",
               score={"rows": len(data), "train": train, "test": test})


WitWorld = lab.export(
    main,
    name="sentiment-datagen-py",
    kind="generator",
    description="Generates a synthetic binary sentiment dataset of short film reviews",
    params=[
        lab.param("rows", "integer", 400, "Number of rows to generate"),
        lab.param("seed", "integer", 7, "Seed of the random generator"),
        lab.param("noise", "number", 0.1, "Fraction of labels flipped at random (0 to 0.5)"),
        lab.param("test_fraction", "number", 0.25, "Fraction of rows in the test split"),
        lab.param("dataset_name", "text", "sentiment", "Name of the dataset to save"),
    ],
)
