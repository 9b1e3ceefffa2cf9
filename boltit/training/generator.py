"""A deterministic generator of realistic help-desk tickets.

It is the embedded default data source (demo, most tests), so the project never
needs the shared real dataset at run time. Categories share vocabulary (access vs.
administrative rights, storage vs. hardware, purchase vs. hardware...), tickets carry
typos and filler, and some are written vaguely, so a good model lands around 0.85-0.93
accuracy rather than a meaningless 100%.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

CATEGORIES: tuple[str, ...] = (
    "Hardware",
    "HR Support",
    "Access",
    "Miscellaneous",
    "Storage",
    "Purchase",
    "Internal Project",
    "Administrative rights",
)
PRIORITIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")

# Roughly the real dataset's mix: hardware and HR dominate, admin rights are rare.
DEFAULT_WEIGHTS: dict[str, float] = {
    "Hardware": 0.28,
    "HR Support": 0.22,
    "Access": 0.15,
    "Miscellaneous": 0.14,
    "Storage": 0.06,
    "Purchase": 0.05,
    "Internal Project": 0.05,
    "Administrative rights": 0.05,
}

# Each category: what breaks or is asked for, and about which thing. Slots overlap on
# purpose between neighbouring categories.
_TOPICS: dict[str, dict[str, list[str]]] = {
    "Hardware": {
        "thing": [
            "laptop",
            "monitor",
            "docking station",
            "keyboard",
            "mouse",
            "printer",
            "headset",
            "screen",
            "battery",
            "charger",
            "webcam",
            "desktop",
            "disk",
        ],
        "issue": [
            "is not turning on",
            "keeps restarting",
            "is broken",
            "flickers",
            "stopped working",
            "is making noise",
            "does not charge",
            "is overheating",
            "shows a black screen",
            "is not detected",
            "has a cracked display",
            "is very slow",
            "needs a replacement",
        ],
        "ask": [
            "please send an engineer",
            "can someone have a look",
            "need a replacement",
            "please repair it",
            "can you swap the device",
        ],
    },
    "HR Support": {
        "thing": [
            "payroll",
            "holiday request",
            "sick leave",
            "contract",
            "onboarding",
            "new starter",
            "employee record",
            "benefits",
            "expense claim",
            "leaver",
            "maternity leave",
            "work experience student",
            "timesheet",
        ],
        "issue": [
            "is not processed",
            "shows the wrong amount",
            "needs to be updated",
            "was rejected",
            "is missing",
            "has the wrong start date",
            "needs approval",
            "was not received",
        ],
        "ask": [
            "please advise",
            "can hr check this",
            "please update the record",
            "could you confirm",
            "please arrange the paperwork",
        ],
    },
    "Access": {
        "thing": [
            "account",
            "password",
            "vpn",
            "email",
            "shared mailbox",
            "login",
            "badge",
            "portal",
            "sharepoint site",
            "teams channel",
            "distribution list",
            "user account",
        ],
        "issue": [
            "is locked",
            "has expired",
            "does not work",
            "is not accepted",
            "was disabled",
            "cannot be reached",
            "needs to be reset",
            "needs to be created",
            "shows access denied",
        ],
        "ask": [
            "please grant access",
            "please reset it",
            "please unlock it",
            "can you add me",
            "please enable the account",
        ],
    },
    "Miscellaneous": {
        "thing": [
            "meeting room",
            "phone line",
            "question",
            "calendar",
            "office move",
            "parking",
            "printer paper",
            "desk",
            "general request",
            "feedback",
            "information",
            "training session",
        ],
        "issue": [
            "needs to be booked",
            "is not clear",
            "needs some help",
            "was cancelled",
            "needs to be arranged",
            "is missing",
            "needs more details",
        ],
        "ask": [
            "please help",
            "any advice is welcome",
            "who should i contact",
            "please let me know",
            "thanks in advance",
        ],
    },
    "Storage": {
        "thing": [
            "shared drive",
            "network drive",
            "mailbox quota",
            "onedrive",
            "backup",
            "file share",
            "home folder",
            "disk space",
            "archive",
            "folder",
            "disk",
        ],
        "issue": [
            "is full",
            "is running out of space",
            "cannot be mapped",
            "lost some files",
            "needs more quota",
            "is not syncing",
            "needs to be restored",
            "needs to be increased",
        ],
        "ask": [
            "please increase the quota",
            "please restore the files",
            "can you extend the space",
            "please map the drive",
        ],
    },
    "Purchase": {
        "thing": [
            "laptop",
            "monitor",
            "licence",
            "software",
            "headset",
            "phone",
            "purchase order",
            "quote",
            "invoice",
            "subscription",
            "docking station",
        ],
        "issue": [
            "needs to be ordered",
            "needs approval",
            "was not delivered",
            "needs a quote",
            "needs to be renewed",
            "is on back order",
            "has a wrong price",
        ],
        "ask": [
            "please raise a purchase order",
            "please order",
            "can you get a quote",
            "please approve the purchase",
            "please check with the supplier",
        ],
    },
    "Internal Project": {
        "thing": [
            "project",
            "migration",
            "rollout",
            "project plan",
            "deliverable",
            "sprint",
            "milestone",
            "project budget",
            "pilot",
            "roadmap",
            "project meeting",
        ],
        "issue": [
            "is behind schedule",
            "needs resources",
            "needs sign off",
            "needs an update",
            "was moved",
            "needs review",
            "needs to be planned",
        ],
        "ask": [
            "please share the status",
            "can we schedule a call",
            "please update the plan",
            "please add it to the backlog",
        ],
    },
    "Administrative rights": {
        "thing": [
            "admin rights",
            "local admin",
            "administrator access",
            "install rights",
            "elevated permissions",
            "admin account",
            "software installation",
            "permission",
            "access",
        ],
        "issue": [
            "are needed",
            "were removed",
            "are missing",
            "need to be granted",
            "have expired",
            "are required to install a tool",
            "are blocked",
        ],
        "ask": [
            "please grant admin rights",
            "please give me local admin",
            "can you elevate my account",
            "please install it for me",
        ],
    },
}

_OPENINGS = [
    "hi",
    "hello",
    "dear team",
    "hi team",
    "good morning",
    "hello support",
    "dear it",
    "hey",
    "",
    "",
    "",
]
_CLOSINGS = [
    "thanks",
    "thank you",
    "regards",
    "many thanks",
    "kind regards",
    "thanks in advance",
    "cheers",
    "",
    "",
]
_FILLER = [
    "as discussed",
    "for my colleague",
    "since yesterday",
    "since this morning",
    "again",
    "for the new team",
    "when possible",
    "on the third floor",
    "for the london office",
    "after the update",
    "from home",
    "on my second device",
]
_VAGUE = [
    "i have a problem with",
    "there is an issue with",
    "need help with",
    "question about",
    "please look at",
    "something is wrong with",
    "request for",
]
_NAMES = [
    "anna",
    "ben",
    "carla",
    "dev",
    "emma",
    "farid",
    "grace",
    "hugo",
    "ines",
    "jon",
    "kim",
    "luca",
    "maya",
    "nils",
    "olga",
    "priya",
    "raj",
    "sara",
    "tom",
    "yuki",
]

# Urgency wording by priority; tickets carry it most of the time, not always.
_URGENCY: dict[str, list[str]] = {
    "P1": [
        "urgent",
        "critical",
        "the whole team is blocked",
        "production is down",
        "asap, everyone affected",
        "outage for all users",
    ],
    "P2": [
        "blocking my work",
        "need this today",
        "high priority",
        "cannot work",
        "client meeting soon",
    ],
    "P3": ["when you have time", "needed this week", "normal priority", ""],
    "P4": ["no rush", "low priority", "whenever convenient", "nice to have", "for next month"],
}
# Some categories run hotter: access and hardware failures block people.
_PRIORITY_WEIGHTS: dict[str, list[float]] = {
    "Hardware": [0.12, 0.33, 0.40, 0.15],
    "Access": [0.15, 0.35, 0.38, 0.12],
    "Storage": [0.10, 0.30, 0.42, 0.18],
    "Administrative rights": [0.06, 0.30, 0.44, 0.20],
}
_DEFAULT_PRIORITY_WEIGHTS = [0.04, 0.18, 0.48, 0.30]


def generate_tickets(
    n: int = 4000,
    *,
    seed: int = 7,
    start: datetime | None = None,
    days: int = 30,
    label_noise: float = 0.0,
    category_weights: Mapping[str, float] | None = None,
    ambiguity: float = 0.25,
    typo_rate: float = 0.03,
) -> pd.DataFrame:
    """Generate ``n`` labelled help-desk tickets, the same ones for the same arguments.

    Args:
        n: Number of tickets.
        seed: Seed of the random generator; equal seeds give equal frames.
        start: First ``created_at``; defaults to ``days`` before today's midnight (UTC).
        days: Span of ``created_at`` in days from ``start``.
        label_noise: Share of tickets whose category is replaced by another one at random
            (mislabelled training data).
        category_weights: Relative frequency per category; unknown names are refused and
            missing ones get weight 0. Defaults to a mix like the real dataset's.
        ambiguity: Share of tickets written vaguely or borrowing a neighbour's vocabulary.
        typo_rate: Chance per word of a typo.

    Returns:
        Columns ``text``, ``category``, ``priority`` (P1-P4) and ``created_at`` (UTC).
    """
    if n < 0:
        raise ValueError("n must not be negative")
    if not 0.0 <= label_noise <= 1.0 or not 0.0 <= ambiguity <= 1.0:
        raise ValueError("label_noise and ambiguity must be between 0 and 1")
    weights = _weights(category_weights)
    rng = np.random.default_rng(seed)
    categories = rng.choice(len(CATEGORIES), size=n, p=weights)

    texts: list[str] = []
    labels: list[str] = []
    priorities: list[str] = []
    for index in categories:
        category = CATEGORIES[int(index)]
        priority = PRIORITIES[
            int(rng.choice(4, p=_PRIORITY_WEIGHTS.get(category, _DEFAULT_PRIORITY_WEIGHTS)))
        ]
        text = _ticket_text(rng, category, priority, ambiguity)
        texts.append(_typos(rng, text, typo_rate))
        if label_noise and rng.random() < label_noise:
            category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        labels.append(category)
        priorities.append(priority)

    first = start or datetime.now(UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) - timedelta(days=days)
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    offsets = np.sort(rng.uniform(0, days * 86400.0, size=n))
    created = [first + timedelta(seconds=float(s)) for s in offsets]
    return pd.DataFrame(
        {
            "text": texts,
            "category": labels,
            "priority": priorities,
            "created_at": pd.to_datetime(created, utc=True),
        }
    )


def _weights(category_weights: Mapping[str, float] | None) -> np.ndarray:
    given = DEFAULT_WEIGHTS if category_weights is None else dict(category_weights)
    unknown = sorted(set(given) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown categories {unknown}; known: {list(CATEGORIES)}")
    raw = np.array([max(float(given.get(c, 0.0)), 0.0) for c in CATEGORIES])
    if raw.sum() <= 0:
        raise ValueError("category_weights must give at least one category a positive weight")
    return raw / raw.sum()


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _ticket_text(rng: np.random.Generator, category: str, priority: str, ambiguity: float) -> str:
    topic = _TOPICS[category]
    thing = _pick(rng, topic["thing"])
    issue = _pick(rng, topic["issue"])
    ask = _pick(rng, topic["ask"])
    if rng.random() < ambiguity:
        # Vague or borrowed wording: the cue for the true category is weak or absent.
        neighbour = _TOPICS[_pick(rng, CATEGORIES)]
        if rng.random() < 0.5:
            issue = _pick(rng, neighbour["issue"])
            ask = _pick(rng, neighbour["ask"])
        else:
            thing = _pick(rng, neighbour["thing"])
            issue = _pick(rng, _VAGUE).split()[-1]
    shapes = (
        f"my {thing} {issue}",
        f"the {thing} {issue} {_pick(rng, _FILLER)}",
        f"{_pick(rng, _VAGUE)} the {thing}, it {issue}",
        f"{thing} {issue}. {ask}",
        f"{_pick(rng, _NAMES)} says the {thing} {issue}",
        f"{ask} - {thing} {issue} {_pick(rng, _FILLER)}",
    )
    body = _pick(rng, shapes)
    parts = [_pick(rng, _OPENINGS), body]
    if rng.random() < 0.6:
        parts.append(ask)
    if rng.random() < 0.7:
        urgency = _pick(rng, _URGENCY[priority])
        parts.append(urgency)
    elif rng.random() < 0.3:
        parts.append(_pick(rng, _URGENCY[_pick(rng, PRIORITIES)]))
    parts.append(_pick(rng, _CLOSINGS))
    if rng.random() < 0.5:
        parts.append(_pick(rng, _NAMES))
    return " ".join(p for p in parts if p).strip()


def _typos(rng: np.random.Generator, text: str, rate: float) -> str:
    if rate <= 0:
        return text
    words = text.split()
    for i, word in enumerate(words):
        if len(word) > 3 and rng.random() < rate:
            j = int(rng.integers(len(word) - 1))
            kind = rng.random()
            if kind < 0.4:  # swapped letters
                word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
            elif kind < 0.7:  # dropped letter
                word = word[:j] + word[j + 1 :]
            else:  # doubled letter
                word = word[:j] + word[j] + word[j:]
            words[i] = word
    return " ".join(words)
