"""Realistic synthetic posts: varied hooks and bodies, personas, long-tailed engagement.

Engagement is log-normal (median ~2.7%) with effects that a model could learn: some hook
styles and personas earn more. Roughly 15-25% of posts clear the default 6% threshold,
a few percent have no engagement yet (NULL), timestamps spread over the last weeks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

PERSONAS: dict[str, dict[str, Any]] = {
    "fitness_coach": {
        "effect": 1.15,
        "topics": ["strength training", "morning runs", "meal prep", "recovery days", "mobility"],
        "audience": ["beginners", "busy parents", "desk workers", "runners"],
    },
    "saas_founder": {
        "effect": 1.0,
        "topics": ["pricing", "churn", "cold outreach", "hiring engineers", "product-led growth"],
        "audience": ["first-time founders", "indie hackers", "B2B teams", "solo makers"],
    },
    "data_scientist": {
        "effect": 0.9,
        "topics": [
            "A/B testing",
            "feature stores",
            "SQL window functions",
            "model drift",
            "dashboards",
        ],
        "audience": ["analysts", "ML engineers", "data teams", "product managers"],
    },
    "travel_writer": {
        "effect": 1.1,
        "topics": [
            "night trains",
            "carry-on packing",
            "street food",
            "off-season trips",
            "slow travel",
        ],
        "audience": ["weekend travellers", "digital nomads", "families", "first-time flyers"],
    },
    "home_chef": {
        "effect": 1.05,
        "topics": ["sourdough", "one-pan dinners", "knife skills", "spice blends", "batch cooking"],
        "audience": ["students", "new cooks", "couples", "people on a budget"],
    },
    "career_mentor": {
        "effect": 0.95,
        "topics": [
            "salary negotiation",
            "remote interviews",
            "promotions",
            "portfolios",
            "burnout",
        ],
        "audience": ["new grads", "career switchers", "managers", "senior engineers"],
    },
}

# Hook styles and how much engagement they tend to earn (the signal worth learning).
HOOK_STYLES: list[tuple[str, float, list[str]]] = [
    (
        "number",
        1.35,
        [
            "{n} {topic} mistakes {audience} make (and how to fix them)",
            "I tried {topic} for {n} days. Here is what changed.",
            "{n} lessons about {topic} nobody told me",
        ],
    ),
    (
        "question",
        1.2,
        [
            "Why do {audience} keep getting {topic} wrong?",
            "What if everything you know about {topic} is backwards?",
            "Is {topic} really worth it for {audience}?",
        ],
    ),
    (
        "contrarian",
        1.45,
        [
            "Unpopular opinion: {topic} is overrated for {audience}.",
            "Stop doing {topic} the way everyone tells you.",
            "The {topic} advice {audience} hear most is wrong.",
        ],
    ),
    (
        "story",
        1.1,
        [
            "Last {weekday} a reader asked me about {topic}.",
            "Three years ago I failed at {topic}. This is what I learned.",
            "My worst week of {topic} taught me the most.",
        ],
    ),
    (
        "plain",
        0.75,
        [
            "Some thoughts on {topic}.",
            "A few notes about {topic} for {audience}.",
            "An update on {topic}.",
        ],
    ),
]

OPENERS = [
    "Most {audience} start {topic} with the wrong goal.",
    "Here is the short version for {audience}.",
    "I learned this the hard way.",
    "The first step is smaller than you think.",
    "Nobody talks about the boring part of {topic}.",
]
MIDDLES = [
    "Pick one habit and repeat it for {n} days before adding another.",
    "Measure what you do, not what you plan to do.",
    "Write down what worked, and what did not, every evening.",
    "Cut the steps that feel productive but change nothing.",
    "Ask someone two years ahead of you what they would skip.",
    "Start with the {topic} basics and make them automatic.",
    "Spend the first ten minutes on the hardest part.",
    "Keep a simple checklist; complexity is where plans die.",
]
CLOSERS = [
    "Save this for your next {topic} session.",
    "What would you add? Tell me below.",
    "Try it this week and report back.",
    "Share it with someone who needs it.",
    "",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass(frozen=True)
class SyntheticSpec:
    posts: int
    seed: int = 7
    weeks: int = 4
    null_engagement_share: float = 0.03
    id_prefix: str = "post"


def generate_posts(spec: SyntheticSpec, *, now: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``spec.posts`` post dicts with the fields of ``PostIn``; deterministic per seed."""
    rng = random.Random(spec.seed)
    now = now or datetime.now(UTC)
    span_seconds = spec.weeks * 7 * 24 * 3600
    persona_names = list(PERSONAS)
    for index in range(spec.posts):
        persona = rng.choice(persona_names)
        profile = PERSONAS[persona]
        _style, style_effect, templates = rng.choice(HOOK_STYLES)
        slots = {
            "topic": rng.choice(profile["topics"]),
            "audience": rng.choice(profile["audience"]),
            "n": rng.choice([3, 5, 7, 10, 12, 30]),
            "weekday": rng.choice(WEEKDAYS),
        }
        hook = rng.choice(templates).format(**slots)
        body = _body(rng, slots)
        rate: float | None = None
        if rng.random() >= spec.null_engagement_share:
            median = 0.027 * profile["effect"] * style_effect
            rate = min(1.0, math.exp(math.log(median) + rng.gauss(0.0, 0.7)))
        impressions = int(math.exp(rng.gauss(7.5, 1.0)))
        words = len(hook.split()) + len(body.split())
        yield {
            "id": f"{spec.id_prefix}-{spec.seed}-{index:07d}",
            "persona_id": persona,
            "hook": hook,
            "body": body,
            "engagement_rate": None if rate is None else round(rate, 6),
            "impressions": impressions,
            "engagements": None if rate is None else round(rate * impressions),
            "tokens_used": int(words * 1.3) + 12,
            "model_id": rng.choice(["gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]),
            "ts": now - timedelta(seconds=rng.uniform(0, span_seconds)),
        }


def _body(rng: random.Random, slots: dict[str, Any]) -> str:
    sentences = [rng.choice(OPENERS)]
    sentences += rng.sample(MIDDLES, k=rng.randint(2, 4))
    closer = rng.choice(CLOSERS)
    if closer:
        sentences.append(closer)
    return " ".join(sentence.format(**slots) for sentence in sentences)
