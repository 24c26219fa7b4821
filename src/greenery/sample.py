"""`greenery sample`: a deterministic, Greenery-shaped export for fresh clones, tests and benchmarks.

The files have the real export's columns and formats (line endings, missing final newlines,
`Z` timestamps, empty strings for missing values, ZIP codes with leading zeros, promos keyed by
name). Behaviour is plausible rather than random: buyers with one and with several orders,
sessions that view, add to cart and check out, promos, four carriers, late deliveries, orders
still being prepared. Two signals are built in so the indicator chapter has something to find:
a late first delivery lowers the chance of a second order, and a promo on the first order
raises it. Like the real export, each chunk of users holds one account that behaves like a script
(`_bot_sessions`: 150 browsing-only sessions started within one hour), so the unusual-traffic
rules have something to flag. Scale 1 is about the real export's size; users are generated in chunks, so memory
stays bounded at any scale. The same seed and scale give byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from greenery import config
from greenery.config import SAMPLE_MARKER
from greenery.contract import RAW_TABLES, TABLES_BY_NAME
from greenery.errors import UsageError
from greenery.outputs import atomic, ownership

GENERATOR_VERSION = 2
USERS_PER_SCALE = 130
CHUNK_USERS = 2_000

WINDOW_START = np.datetime64("2021-02-10T00:00:00", "s")
WINDOW_SECONDS = 2 * 86_400  # orders fall in two days, like the real export
SIGNUP_START = np.datetime64("2020-01-01T00:00:00", "s")
SITE = "https://greenery.com"


@dataclass(frozen=True)
class Window:
    """The span an export's orders and events fall in, and how much less often buyers order again in it."""

    start: np.datetime64 = WINDOW_START
    seconds: int = WINDOW_SECONDS
    repeat_drop: float = 0.0  # subtracted from each buyer's chance of a second order (a planted change)


DEFAULT_WINDOW = Window()

PLANTS = [
    "Monstera", "Pothos", "Snake Plant", "Fiddle Leaf Fig", "Peace Lily", "ZZ Plant", "Calathea",
    "Rubber Plant", "Aloe Vera", "Spider Plant", "Bird of Paradise", "Boston Fern", "String of Pearls",
    "Jade Plant", "Philodendron", "Chinese Evergreen", "Ponytail Palm", "Majesty Palm", "Bamboo",
    "Cactus", "Orchid", "Money Tree", "Dracaena", "Haworthia", "Alocasia", "Begonia", "Croton",
    "Hoya", "Peperomia", "Arrow Head",
]
PROMOS = [("spring fling", 5, "active"), ("Welcome", 10, "inactive"), ("green-thumb", 15, "active"),
          ("Loyalty", 8, "inactive"), ("flash sale", 20, "inactive"), ("Bundle", 12, "inactive")]
PROMO_DISCOUNTS = np.array([p[1] for p in PROMOS], dtype=float)
FIRST_NAMES = ["Ada", "Ben", "Cleo", "Dev", "Esme", "Finn", "Gia", "Hugo", "Iris", "Jon", "Kai", "Lena",
               "Milo", "Nia", "Otto", "Pia", "Quinn", "Rosa", "Sami", "Tess", "Uma", "Vik", "Wren", "Yara"]
LAST_NAMES = ["Alder", "Birch", "Cedar", "Dahl", "Elm", "Fern", "Grove", "Hazel", "Ivy", "Juniper", "Kale",
              "Laurel", "Moss", "Nettle", "Oak", "Pine", "Quill", "Reed", "Sage", "Thorn", "Vale", "Willow"]
STREETS = ["Maple", "Oak", "Cedar", "Park", "Lake", "Hill", "River", "Forest", "Meadow", "Sunset"]
SUFFIXES = ["Street", "Avenue", "Road", "Lane", "Court", "Way", "Drive", "Place"]
STATES = ["California", "Texas", "New York", "Florida", "Virginia", "Massachusetts", "Ohio",
          "Washington", "Colorado", "New Jersey", "Georgia", "Illinois"]
STATE_WEIGHTS = np.array([17, 23, 7, 8, 9, 5, 6, 6, 5, 4, 6, 6], dtype=float)
CARRIERS = ["ups", "fedex", "usps", "dhl"]
CARRIER_WEIGHTS = np.array([0.47, 0.27, 0.17, 0.09])


# --------------------------------------------------------------------------- formatting helpers

def _uuids(rng: np.random.Generator, n: int, text: bool = True) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    if not text:  # the draws are made all the same, so the stream stays the written files' stream
        return np.arange(n)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.tobytes().hex()
    return np.array(
        [f"{h[i:i+8]}-{h[i+8:i+12]}-{h[i+12:i+16]}-{h[i+16:i+20]}-{h[i+20:i+32]}" for i in range(0, 32 * n, 32)],
        dtype=object,
    )


def _timestamps(seconds: np.ndarray, start: np.datetime64 = WINDOW_START) -> np.ndarray:
    stamps = np.datetime_as_string(start + seconds.astype("timedelta64[s]"), unit="s")
    return np.char.add(stamps, "Z").astype(object)


def _money(values: np.ndarray) -> np.ndarray:
    return np.array([repr(round(float(v), 2)) for v in values], dtype=object)


def _blank_where(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = values.astype(object).copy()
    out[missing] = ""
    return out


class _CsvWriter:
    """Writes one raw file in its delivered format: header, rows, the file's own line ending."""

    def __init__(self, folder: Path, table_name: str):
        self.table = TABLES_BY_NAME[table_name]
        self.eol = "\r\n" if self.table.crlf else "\n"
        self.handle = (folder / self.table.file_name).open("wb")
        self.sha256 = hashlib.sha256()  # of what was written: the marker records it (check_sample_target)
        self._put(",".join(self.table.column_names))

    def _put(self, text: str) -> None:
        data = text.encode("utf-8")
        self.sha256.update(data)
        self.handle.write(data)

    def write(self, columns: dict[str, np.ndarray]) -> None:
        frame = pd.DataFrame({name: columns[name] for name in self.table.column_names})
        if frame.empty:
            return
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, lineterminator=self.eol)
        body = buffer.getvalue()
        self._put(self.eol + body[: -len(self.eol)])  # each row starts a line: no final newline

    def close(self) -> None:
        if self.table.final_newline:
            self._put(self.eol)
        self.handle.close()


# --------------------------------------------------------------------------- the shop

def _catalogue(rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    n = len(PLANTS)
    product_ids = _uuids(rng, n)
    prices = rng.choice(np.arange(15.0, 95.01, 0.25), size=n)
    products = {
        "product_id": product_ids,
        "name": np.array(PLANTS, dtype=object),
        "price": _money(prices),
        "inventory": rng.integers(0, 101, size=n).astype(str).astype(object),
    }
    promos = {
        "promo_id": np.array([p[0] for p in PROMOS], dtype=object),
        "discount": np.array([str(p[1]) for p in PROMOS], dtype=object),
        "status": np.array([p[2] for p in PROMOS], dtype=object),
    }
    return {"products": products, "promos": promos, "_prices": prices, "_ids": product_ids}


def _people(rng: np.random.Generator, n_users: int, n_extra_addresses: int) -> dict:
    user_ids = _uuids(rng, n_users)
    n_addresses = n_users + n_extra_addresses
    address_ids = _uuids(rng, n_addresses)
    first = rng.choice(FIRST_NAMES, size=n_users)
    last = rng.choice(LAST_NAMES, size=n_users)
    serial = rng.integers(0, 1_000_000, size=n_users)
    emails = [f"{f[0].lower()}{la.lower()}{s}@example.com" for f, la, s in zip(first, last, serial, strict=True)]
    phones = [f"{a}-{b:03d}-{c:04d}" for a, b, c in zip(rng.integers(201, 990, n_users),
                                                        rng.integers(0, 1000, n_users),
                                                        rng.integers(0, 10_000, n_users), strict=True)]
    signup = rng.integers(0, 360 * 86_400, size=n_users)
    updated = signup + rng.integers(0, 30 * 86_400, size=n_users)
    users = {
        "user_id": user_ids,
        "first_name": first.astype(object),
        "last_name": last.astype(object),
        "email": np.array(emails, dtype=object),
        "phone_number": np.array(phones, dtype=object),
        "created_at": _timestamps(signup, SIGNUP_START),
        "updated_at": _timestamps(updated, SIGNUP_START),
        "address_id": address_ids[:n_users],
    }
    numbers = rng.integers(1, 9999, size=n_addresses)
    streets = [f"{num} {s} {x}" for num, s, x in zip(numbers, rng.choice(STREETS, n_addresses),
                                                      rng.choice(SUFFIXES, n_addresses), strict=True)]
    addresses = {
        "address_id": address_ids,
        "address": np.array(streets, dtype=object),
        "zipcode": np.char.zfill(rng.integers(501, 99_951, size=n_addresses).astype(str), 5).astype(object),
        "state": rng.choice(STATES, size=n_addresses, p=STATE_WEIGHTS / STATE_WEIGHTS.sum()).astype(object),
        "country": np.full(n_addresses, "United States", dtype=object),
    }
    return {"users": users, "addresses": addresses, "address_ids": address_ids}


def _promo_that_fits(promo_index: np.ndarray, order_cost: np.ndarray) -> np.ndarray:
    """The drawn promo, or the next one in the list whose discount the order's items cover.

    The shop takes a promo's fixed discount off the items, never off shipping: a code worth more
    than the basket is not accepted (the checkout offers the next code that fits), so an order's
    total is always items + shipping - discount, at least its shipping, never negative. The
    cheapest basket (one plant at US$15) covers most codes, so one always fits. No random draw is
    made here: orders that fitted already keep their code, and the stream of draws is unchanged."""
    fits = PROMO_DISCOUNTS[None, :] <= order_cost[:, None] + 1e-9  # (orders, promos)
    offsets = np.arange(len(PROMOS))
    candidates = (promo_index[:, None] + offsets[None, :]) % len(PROMOS)  # drawn code first, then the next ones
    first_fit = np.argmax(np.take_along_axis(fits, candidates, axis=1), axis=1)
    return candidates[np.arange(len(promo_index)), first_fit]


def _orders(rng: np.random.Generator, people: dict, shop: dict, window: Window = DEFAULT_WINDOW,
            text: bool = True) -> dict:
    n_users = len(people["users"]["user_id"])
    is_buyer = rng.random(n_users) < 0.95
    buyers = np.flatnonzero(is_buyer)
    first_late = rng.random(len(buyers)) < 0.35
    first_promo = rng.random(len(buyers)) < 0.12
    p_repeat = 0.86 - 0.25 * first_late + 0.08 * first_promo - window.repeat_drop
    repeats = rng.random(len(buyers)) < p_repeat
    extra = np.where(repeats, 1 + rng.poisson(1.45, size=len(buyers)), 0)
    n_orders = 1 + extra
    owner = np.repeat(buyers, n_orders)
    rank = np.concatenate([np.arange(k) for k in n_orders]) if len(n_orders) else np.array([], int)
    n = len(owner)

    # Times: sorted within each buyer so rank 0 is the first order.
    seconds = rng.integers(0, window.seconds, size=n)
    order = np.lexsort((seconds, owner))
    seconds = seconds[order]
    is_first = rank == 0
    late = np.where(is_first, np.repeat(first_late, n_orders), rng.random(n) < 0.3)
    promo = np.where(is_first, np.repeat(first_promo, n_orders), rng.random(n) < 0.1)

    promo_index = rng.integers(0, len(PROMOS), size=n)

    # Items: 1-7 distinct products per order.
    k = np.clip(1 + rng.binomial(6, 0.23, size=n), 1, 7)
    picks = np.argsort(rng.random((n, len(PLANTS))), axis=1)[:, :7]
    item_mask = np.arange(7)[None, :] < k[:, None]
    item_order = np.repeat(np.arange(n), k)
    item_product = picks[item_mask]
    quantity = rng.integers(1, 5, size=len(item_order))
    order_cost = np.bincount(item_order, weights=quantity * shop["_prices"][item_product], minlength=n)
    promo_index = _promo_that_fits(promo_index, order_cost)
    promo &= PROMO_DISCOUNTS[promo_index] <= order_cost  # always true while the cheapest plant costs US$15
    discount = np.where(promo, PROMO_DISCOUNTS[promo_index], 0.0)
    promo_name = _blank_where(np.array([p[0] for p in PROMOS], dtype=object)[promo_index], ~promo)
    shipping = np.round(rng.uniform(0, 10, size=n), 2)
    total = order_cost + shipping - discount

    status = rng.choice(["delivered", "shipped", "preparing"], size=n, p=[0.85, 0.08, 0.07])
    shipped = status != "preparing"
    delivered = status == "delivered"
    promised = seconds + rng.integers(1, 6, size=n) * 86_400
    delivered_at = np.where(late, promised + rng.integers(1, 4, size=n) * 86_400,
                            promised - rng.integers(0, 2, size=n) * 86_400)
    delivered_at = np.maximum(delivered_at, seconds + 86_400)
    no_estimate = shipped & (rng.random(n) < 0.06)
    carrier = rng.choice(CARRIERS, size=n, p=CARRIER_WEIGHTS).astype(object)
    own_address = people["users"]["address_id"][owner]
    other_address = people["address_ids"][rng.integers(0, len(people["address_ids"]), size=n)]
    address = np.where(rng.random(n) < 0.9, own_address, other_address)
    # Without `text` (the bench's counts), the same draws are made but nothing is written out as text.
    money = _money if text else (lambda values: values)
    stamps = (lambda seconds: _timestamps(seconds, window.start)) if text else (lambda seconds: seconds)
    order_ids = _uuids(rng, n, text)

    orders = {
        "order_id": order_ids,
        "user_id": people["users"]["user_id"][owner],
        "promo_id": promo_name,
        "address_id": address,
        "created_at": stamps(seconds),
        "order_cost": money(order_cost),
        "shipping_cost": money(shipping),
        "order_total": money(total),
        "tracking_id": _blank_where(_uuids(rng, n, text), ~shipped),
        "shipping_service": _blank_where(carrier, ~shipped),
        "estimated_delivery_at": _blank_where(stamps(promised), ~shipped | no_estimate),
        "delivered_at": _blank_where(stamps(delivered_at), ~delivered),
        "status": status.astype(object),
    }
    items = {
        "order_id": order_ids[item_order],
        "product_id": shop["_ids"][item_product],
        "quantity": quantity.astype(str).astype(object),
    }
    return {"orders": orders, "order_items": items, "_owner": owner, "_seconds": seconds,
            "_item_order": item_order, "_item_product": item_product, "_shipped": shipped, "_k": k}


def _events(rng: np.random.Generator, people: dict, shop: dict, sales: dict, window: Window = DEFAULT_WINDOW) -> dict:
    """Checkout sessions (view, add, checkout, later a shipping notice) and browsing-only sessions."""
    user_ids = people["users"]["user_id"]
    product_ids = shop["_ids"]
    n_orders = len(sales["_owner"])
    n_users = len(user_ids)

    # Browsing-only sessions: ~1.7 per user, 1-5 product views, a cart add now and then.
    n_browse = rng.poisson(1.7, size=n_users)
    browse_user = np.repeat(np.arange(n_users), n_browse)
    n_bs = len(browse_user)
    browse_start = rng.integers(-86_400 // 4, window.seconds, size=n_bs)
    views_per_browse = rng.integers(1, 6, size=n_bs)

    checkout_views = sales["_k"] + rng.binomial(2, 0.3, size=n_orders)  # ordered products plus a look around
    session_user = np.concatenate([sales["_owner"], browse_user])
    session_views = np.concatenate([checkout_views, views_per_browse])
    session_start = np.concatenate([sales["_seconds"] - 60 * rng.integers(2, 40, size=n_orders), browse_start])
    n_sessions = len(session_user)
    session_ids = _uuids(rng, n_sessions)

    # Page views: the ordered products first (checkout sessions), then random ones.
    v_session = np.repeat(np.arange(n_sessions), session_views)
    v_index = np.concatenate([np.arange(v) for v in session_views]) if n_sessions else np.array([], int)
    v_product = rng.integers(0, len(product_ids), size=len(v_session))
    first_item = np.concatenate([[0], np.cumsum(sales["_k"])[:-1]]) if n_orders else np.array([], int)
    ordered_view = (v_session < n_orders) & (v_index < np.append(sales["_k"], np.zeros(n_bs, int))[v_session])
    v_product[ordered_view] = sales["_item_product"][first_item[v_session[ordered_view]] + v_index[ordered_view]]
    v_time = session_start[v_session] + 45 * v_index + rng.integers(0, 40, size=len(v_session))

    # Cart adds: every ordered product; in browsing sessions, a third of the views.
    a_mask = ordered_view | ((v_session >= n_orders) & (rng.random(len(v_session)) < 0.33))
    a_session, a_product = v_session[a_mask], v_product[a_mask]
    a_time = v_time[a_mask] + rng.integers(5, 30, size=len(a_session))

    c_time = sales["_seconds"] - 1
    shipped = np.flatnonzero(sales["_shipped"])
    s_time = sales["_seconds"][shipped] + rng.integers(2, 20, size=len(shipped)) * 3_600

    order_ids = sales["orders"]["order_id"]
    session = np.concatenate([v_session, a_session, np.arange(n_orders), shipped])
    kind = np.concatenate([np.full(len(v_session), "page_view"), np.full(len(a_session), "add_to_cart"),
                           np.full(n_orders, "checkout"), np.full(len(shipped), "package_shipped")]).astype(object)
    when = np.concatenate([v_time, a_time, c_time, s_time])
    product = np.concatenate([product_ids[v_product], product_ids[a_product],
                              np.full(n_orders + len(shipped), "", dtype=object)])
    order = np.concatenate([np.full(len(v_session) + len(a_session), "", dtype=object), order_ids,
                            order_ids[shipped]])
    url = np.where(
        kind == "checkout", SITE + "/checkout/" + order,
        np.where(kind == "package_shipped", SITE + "/shipping/" + order, SITE + "/product/" + product),
    )
    sort = np.lexsort((when, session))
    return {
        "event_id": _uuids(rng, len(session)),
        "session_id": session_ids[session][sort],
        "user_id": user_ids[session_user[session]][sort],
        "page_url": url[sort].astype(object),
        "created_at": _timestamps(when[sort], window.start),
        "event_type": kind[sort],
        "order_id": order[sort],
        "product_id": product[sort],
    }


BOT_SESSIONS = 150
BOT_HOUR = 36 * 3_600  # the bot's hour starts 36 hours into the window (Thu 11 Feb 12:00 UTC)


def _bot_sessions(rng: np.random.Generator, people: dict, shop: dict, window: Window = DEFAULT_WINDOW) -> dict:
    """One account (the chunk's first user) starting BOT_SESSIONS sessions within one hour, each
    one to three page views seconds apart and nothing else: the burst the traffic rules flag."""
    n = BOT_SESSIONS
    views = rng.integers(1, 4, size=n)
    session = np.repeat(np.arange(n), views)
    index = np.concatenate([np.arange(v) for v in views])
    hour = BOT_HOUR if window.seconds > BOT_HOUR + 3_600 else window.seconds // 2  # a series' one-day window
    start = hour + rng.integers(0, 3_600, size=n)
    when = start[session] + 3 * index
    product = shop["_ids"][rng.integers(0, len(shop["_ids"]), size=len(session))]
    return {
        "event_id": _uuids(rng, len(session)),
        "session_id": _uuids(rng, n)[session],
        "user_id": np.full(len(session), people["users"]["user_id"][0], dtype=object),
        "page_url": (SITE + "/product/" + product).astype(object),
        "created_at": _timestamps(when, window.start),
        "event_type": np.full(len(session), "page_view", dtype=object),
        "order_id": np.full(len(session), "", dtype=object),
        "product_id": product,
    }


def _with_bot_sessions(events: dict, bot: dict) -> dict:
    return {name: np.concatenate([events[name], bot[name]]) for name in events}


def check_sample_target(out: Path) -> None:
    """`out` must be missing, empty, or a sample this tool generated (its marker, and nothing but the
    seven files beside it); anything else is refused (UsageError) and left as it is."""
    if out.is_symlink():
        raise UsageError(f"--out {out} is a symbolic link; name the folder itself")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; name a missing or empty folder")
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        ours = {t.file_name for t in RAW_TABLES} | {SAMPLE_MARKER}
        generated = SAMPLE_MARKER in names and names <= ours and _as_generated(out, names - {SAMPLE_MARKER})
        if names and not generated:
            raise UsageError(f"--out {out} holds files this tool did not generate; "
                             "name a missing or empty folder, or a sample greenery generated")


def _as_generated(out: Path, names: set[str]) -> bool:
    """Each of these files of `out` is a regular file whose bytes are those its marker says `greenery
    sample` wrote: a marker copied or put beside an export (its seven CSVs) never lets a sample replace it."""
    marker = ownership.read_own_json(out / SAMPLE_MARKER)
    recorded = marker.get("sha256") if isinstance(marker, dict) else None
    if not isinstance(recorded, dict):
        return False
    found = ownership.digest_files(out, sorted(names))  # None for a link, a FIFO or a missing file
    return all(found[name] is not None and found[name] == recorded.get(name) for name in names)


def generate(out: Path, scale: float = 1.0, seed: int = 42, day: SeriesDay | None = None) -> dict[str, int]:
    """Write the seven files into `out`; return rows written per table. With `day`, the export is one
    day of a series (generate_series).

    The files are written into a staging folder beside `out` and swapped in when complete, so an
    interrupted run leaves `out` as it was; only a folder this tool generated is ever replaced."""
    if not 0 < scale <= config.SAMPLE_MAX_SCALE:
        raise UsageError(f"--scale must be above 0 and at most {config.SAMPLE_MAX_SCALE:,}")
    if seed < 0:
        raise UsageError("--seed must be 0 or more")
    out = out.absolute()
    check_sample_target(out)
    ownership.remove_leftover_staging(out, "generating")
    stage = ownership.new_staging(out, "generating")
    try:
        rows = _write(stage, scale, seed, day)
        (stage / ownership.STAGING_MARKER).unlink()  # the sample holds its seven files and marker only
        atomic.swap_folder(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)  # this run's own staging folder
    return rows


# --------------------------------------------------------------------------- a series of exports

SERIES_MAX_DAYS = 365
_PLANT = re.compile(r"^(repeat-drop):(\d*\.?\d+)@(\d+)$")
_DAY_FOLDER = re.compile(r"^day-\d{2,3}$")


@dataclass(frozen=True)
class Plant:
    """A change planted in a series: from `day` on, each buyer's chance of a second order is `size` lower
    (0.3: 30 points lower)."""

    kind: str
    size: float
    day: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.size:g}@{self.day}"


@dataclass(frozen=True)
class SeriesDay:
    day: int  # 1 for the first export
    days: int
    plant: Plant | None = None

    @property
    def window(self) -> Window:
        """Day d's export holds the orders and events of its own 24 hours (exports do not overlap, so the
        trends' tests compare independent samples); the planted change applies from its day on."""
        drop = self.plant.size if self.plant and self.day >= self.plant.day else 0.0
        return Window(WINDOW_START + np.timedelta64((self.day - 1) * 86_400, "s"), 86_400, drop)


def parse_plant(text: str, days: int) -> Plant:
    """`repeat-drop:SIZE@DAY`: the chance of a second order drops by SIZE (above 0, at most 1) from DAY on."""
    found = _PLANT.match(text.strip())
    if not found:
        raise UsageError(f"--plant {text!r}: expected repeat-drop:SIZE@DAY, e.g. repeat-drop:0.3@5")
    size, day = float(found.group(2)), int(found.group(3))
    if not 0 < size <= 1:
        raise UsageError(f"--plant {text!r}: the drop must be above 0 and at most 1 (a chance), got {size:g}")
    if not 2 <= day <= days:
        raise UsageError(f"--plant {text!r}: the day must be from 2 to the series' last day ({days}), got {day}")
    return Plant(found.group(1), size, day)


def check_series_target(out: Path, days: int) -> None:
    """`out` must be missing, empty, or a series this tool generated with no more days than asked for."""
    if out.is_symlink():
        raise UsageError(f"--out {out} is a symbolic link; name the folder itself")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; name a missing or empty folder")
    if out.is_dir():
        for entry in out.iterdir():
            if not (_DAY_FOLDER.match(entry.name) and entry.is_dir() and (entry / SAMPLE_MARKER).is_file()):
                raise UsageError(f"--out {out} holds files this tool did not generate; name a missing or empty "
                                 "folder, or a series greenery generated")
            if int(entry.name[4:]) > days:
                raise UsageError(f"--out {out} holds a longer series ({entry.name}); name a new folder")


def generate_series(out: Path, days: int, scale: float = 1.0, seed: int = 42,
                    plant: Plant | None = None) -> dict[str, dict[str, int]]:
    """Write `days` exports of the same shop into out/day-01, out/day-02, ...: the same users, products
    and promos, each day's orders and events in its own 24 hours; returns rows per table per folder."""
    if not 1 <= days <= SERIES_MAX_DAYS:
        raise UsageError(f"--series must be from 1 to {SERIES_MAX_DAYS}, got {days}")
    out = out.absolute()
    check_series_target(out, days)
    out.mkdir(parents=True, exist_ok=True)
    width = 2 if days < 100 else 3
    return {f"day-{d:0{width}d}": generate(out / f"day-{d:0{width}d}", scale, seed, SeriesDay(d, days, plant))
            for d in range(1, days + 1)}


def _chunk(shop: dict, seed: int, chunk: int, n_users: int, day: SeriesDay | None,
           with_events: bool = True) -> tuple[dict, dict]:
    """One chunk of users and what they did: its tables, and the orders' arrays. A series' days share the
    chunk's people (drawn first, from the same stream) and draw their orders and events from streams of their own."""
    rng = np.random.default_rng([seed, 1 + chunk])
    people = _people(rng, n_users, max(1, round(n_users * 0.15)))
    window = day.window if day else DEFAULT_WINDOW
    if day:
        rng = _day_stream(seed, chunk, day)
    sales = _orders(rng, people, shop, window)
    tables = {"users": people["users"], "addresses": people["addresses"],
              "orders": sales["orders"], "order_items": sales["order_items"]}
    if with_events:
        bot = np.random.default_rng([seed, 1 + chunk, 1] + ([day.day] if day else []))
        tables["events"] = _with_bot_sessions(_events(rng, people, shop, sales, window),
                                              _bot_sessions(bot, people, shop, window))
    return tables, sales


def _day_stream(seed: int, chunk: int, day: SeriesDay) -> np.random.Generator:
    return np.random.default_rng([seed, 1 + chunk, 100 + day.day])


def series_sales(seed: int, scale: float, days: list[SeriesDay]) -> list[list[dict]]:
    """The orders' arrays of each day of a series (a list per day, one entry per chunk of users), without
    writing or drawing events, the people drawn once: for measuring the trends' tests over many series
    (greenery.tools.bench_trends). The same draws as the written exports' orders."""
    shop = _catalogue(np.random.default_rng([seed, 0]))
    total_users = max(1, round(USERS_PER_SCALE * scale))
    chunks = []
    for chunk, start in enumerate(range(0, total_users, CHUNK_USERS)):
        n_users = min(CHUNK_USERS, total_users - start)
        people = _people(np.random.default_rng([seed, 1 + chunk]), n_users, max(1, round(n_users * 0.15)))
        chunks.append((chunk, people))
    return [[_orders(_day_stream(seed, chunk, day), people, shop, day.window, text=False) for chunk, people in chunks]
            for day in days]


def _write(out: Path, scale: float, seed: int, day: SeriesDay | None = None) -> dict[str, int]:
    writers = {t.name: _CsvWriter(out, t.name) for t in RAW_TABLES}
    rows = dict.fromkeys(writers, 0)
    try:
        shop = _catalogue(np.random.default_rng([seed, 0]))
        for name in ("products", "promos"):
            writers[name].write(shop[name])
            rows[name] = len(shop[name][next(iter(shop[name]))])
        total_users = max(1, round(USERS_PER_SCALE * scale))
        for chunk, start in enumerate(range(0, total_users, CHUNK_USERS)):
            tables, _ = _chunk(shop, seed, chunk, min(CHUNK_USERS, total_users - start), day)
            for name, columns in tables.items():
                writers[name].write(columns)
                rows[name] += len(next(iter(columns.values())))
    finally:
        for writer in writers.values():
            writer.close()
    marker = {"generator": "greenery sample", "version": GENERATOR_VERSION, "seed": seed, "scale": scale,
              "sha256": {w.table.file_name: w.sha256.hexdigest() for w in writers.values()}}
    if day:
        marker["series"] = {"day": day.day, "days": day.days, "plant": str(day.plant) if day.plant else None}
    (out / SAMPLE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return rows


def ensure_sample(out: Path, scale: float = 1.0, seed: int = 42) -> bool:
    """Generate the default sample into `out` unless a complete one is there; True if generated."""
    marker = out / SAMPLE_MARKER
    complete = marker.is_file() and all((out / t.file_name).is_file() for t in RAW_TABLES)
    if complete and json.loads(marker.read_text()).get("version") == GENERATOR_VERSION:
        return False
    generate(out, scale, seed)
    return True
