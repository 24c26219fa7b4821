"""A tiny hand-made Greenery export whose every figure was worked out by hand.

Four users: u1 orders twice (o1, o2), u2 once (o3), u3 three times (o4, o5, o6), u4 never
(but abandons a cart). Three products, two promos, six sessions; the last recorded activity
(o2's shipping notice, 02-14 00:00) comes after every delivery, as in a consistent snapshot. The expected marts are
spelled out in test_models.py next to the arithmetic that gives them.

`write_shop(folder, edit=...)` writes it in the real export's format (line endings, no final
newline where the real files have none), optionally after `edit` changed the rows.

Ids are written here by their short names (u1, o2, s3, e04...); the contract types ids as UUIDs,
so `write_shop` writes each as `uid(name)`, a UUID that spells the name in hex (`o2` is
00000000-0000-4000-8000-000000006f32), and `named` turns the UUIDs a query returns back into names.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from greenery.contract import ID, RAW_TABLES, personal_values

Rows = dict[str, list[dict[str, str]]]

SHOP: Rows = {
    "users": [
        {"user_id": "u1", "first_name": "Ada", "last_name": "Alder", "email": "ada.alder@example.com",
         "phone_number": "201-555-0101", "created_at": "2020-05-01T10:00:00Z",
         "updated_at": "2020-06-01T10:00:00Z", "address_id": "a1"},
        {"user_id": "u2", "first_name": "Ben", "last_name": "Birch", "email": "ben.birch@example.com",
         "phone_number": "202-555-0102", "created_at": "2020-07-15T08:30:00Z",
         "updated_at": "2020-07-15T08:30:00Z", "address_id": "a2"},
        {"user_id": "u3", "first_name": "Cleo", "last_name": "Cedar", "email": "cleo.cedar@example.com",
         "phone_number": "203-555-0103", "created_at": "2020-11-30T23:00:00Z",
         "updated_at": "2021-01-02T00:00:00Z", "address_id": "a3"},
        {"user_id": "u4", "first_name": "Dev", "last_name": "Dahl", "email": "dev.dahl@example.com",
         "phone_number": "204-555-0104", "created_at": "2020-12-24T12:00:00Z",
         "updated_at": "2020-12-24T12:00:00Z", "address_id": "a4"},
    ],
    "addresses": [
        {"address_id": "a1", "address": "1 Maple Street", "zipcode": "02139", "state": "Massachusetts",
         "country": "United States"},
        {"address_id": "a2", "address": "22 Oak Avenue", "zipcode": "94110", "state": "California",
         "country": "United States"},
        {"address_id": "a3", "address": "333 Cedar Road", "zipcode": "73301", "state": "Texas",
         "country": "United States"},
        {"address_id": "a4", "address": "4444 Pine Lane", "zipcode": "10001", "state": "New York",
         "country": "United States"},
    ],
    "products": [
        {"product_id": "p1", "name": "Fern", "price": "10.0", "inventory": "5"},
        {"product_id": "p2", "name": "Cactus", "price": "20.5", "inventory": "0"},
        {"product_id": "p3", "name": "Orchid", "price": "5.25", "inventory": "12"},
    ],
    "promos": [
        {"promo_id": "Spring sale", "discount": "5", "status": "active"},
        {"promo_id": "gone", "discount": "2", "status": "inactive"},
    ],
    "orders": [
        # o1: 2 x p1 = 20.00; + 5.00 shipping = 25.00. Promised 02-12 09:00, delivered 02-13 09:00.
        {"order_id": "o1", "user_id": "u1", "promo_id": "", "address_id": "a1",
         "created_at": "2021-02-10T09:00:00Z", "order_cost": "20.0", "shipping_cost": "5.0",
         "order_total": "25.0", "tracking_id": "t1", "shipping_service": "ups",
         "estimated_delivery_at": "2021-02-12T09:00:00Z", "delivered_at": "2021-02-13T09:00:00Z",
         "status": "delivered"},
        # o2: 1 x p2 + 2 x p3 = 20.50 + 10.50 = 31.00; + 4.00 - 5 (Spring sale) = 30.00. Shipped.
        {"order_id": "o2", "user_id": "u1", "promo_id": "Spring sale", "address_id": "a1",
         "created_at": "2021-02-11T15:30:00Z", "order_cost": "31.0", "shipping_cost": "4.0",
         "order_total": "30.0", "tracking_id": "t2", "shipping_service": "fedex",
         "estimated_delivery_at": "2021-02-14T15:30:00Z", "delivered_at": "", "status": "shipped"},
        # o3: 4 x p3 = 21.00; free shipping. Promised 02-13 23:59:59, delivered a day early.
        {"order_id": "o3", "user_id": "u2", "promo_id": "", "address_id": "a2",
         "created_at": "2021-02-10T23:59:59Z", "order_cost": "21.0", "shipping_cost": "0.0",
         "order_total": "21.0", "tracking_id": "t3", "shipping_service": "usps",
         "estimated_delivery_at": "2021-02-13T23:59:59Z", "delivered_at": "2021-02-12T23:59:59Z",
         "status": "delivered"},
        # o4: 1 x p1 = 10.00; + 2.50 - 2 (gone) = 10.50. Preparing.
        {"order_id": "o4", "user_id": "u3", "promo_id": "gone", "address_id": "a3",
         "created_at": "2021-02-10T12:00:00Z", "order_cost": "10.0", "shipping_cost": "2.5",
         "order_total": "10.5", "tracking_id": "", "shipping_service": "", "estimated_delivery_at": "",
         "delivered_at": "", "status": "preparing"},
        # o5: p1 + p2 = 30.50; + 3.00 = 33.50.
        {"order_id": "o5", "user_id": "u3", "promo_id": "", "address_id": "a3",
         "created_at": "2021-02-11T08:00:00Z", "order_cost": "30.5", "shipping_cost": "3.0",
         "order_total": "33.5", "tracking_id": "", "shipping_service": "", "estimated_delivery_at": "",
         "delivered_at": "", "status": "preparing"},
        # o6: p3 = 5.25; + 1.00 = 6.25.
        {"order_id": "o6", "user_id": "u3", "promo_id": "", "address_id": "a3",
         "created_at": "2021-02-11T20:00:00Z", "order_cost": "5.25", "shipping_cost": "1.0",
         "order_total": "6.25", "tracking_id": "", "shipping_service": "", "estimated_delivery_at": "",
         "delivered_at": "", "status": "preparing"},
    ],
    "order_items": [
        {"order_id": "o1", "product_id": "p1", "quantity": "2"},
        {"order_id": "o2", "product_id": "p2", "quantity": "1"},
        {"order_id": "o2", "product_id": "p3", "quantity": "2"},
        {"order_id": "o3", "product_id": "p3", "quantity": "4"},
        {"order_id": "o4", "product_id": "p1", "quantity": "1"},
        {"order_id": "o5", "product_id": "p1", "quantity": "1"},
        {"order_id": "o5", "product_id": "p2", "quantity": "1"},
        {"order_id": "o6", "product_id": "p3", "quantity": "1"},
    ],
    "events": [],  # filled below, one session at a time
}


def _event(n: int, session: str, user: str, at: str, kind: str, order: str = "", product: str = "") -> dict:
    page = f"checkout/{order}" if kind == "checkout" else f"shipping/{order}" if order else f"product/{product}"
    return {"event_id": f"e{n:02d}", "session_id": session, "user_id": user,
            "page_url": f"https://greenery.com/{page}", "created_at": at, "event_type": kind,
            "order_id": order, "product_id": product}


_SESSIONS = [
    # s1 (u1): views p1 and p3, adds p1, checks out o1; the parcel ships that evening.
    ("s1", "u1", "2021-02-10T08:50:00Z", "page_view", "", "p1"),
    ("s1", "u1", "2021-02-10T08:52:00Z", "add_to_cart", "", "p1"),
    ("s1", "u1", "2021-02-10T08:55:00Z", "page_view", "", "p3"),
    ("s1", "u1", "2021-02-10T08:59:59Z", "checkout", "o1", ""),
    ("s1", "u1", "2021-02-10T20:00:00Z", "package_shipped", "o1", ""),
    # s2 (u1): looks at p2 twice and leaves.
    ("s2", "u1", "2021-02-11T10:00:00Z", "page_view", "", "p2"),
    ("s2", "u1", "2021-02-11T10:05:00Z", "page_view", "", "p2"),
    # s3 (u1): views p2, adds p2 and (without viewing it) p3, checks out o2.
    ("s3", "u1", "2021-02-11T15:20:00Z", "page_view", "", "p2"),
    ("s3", "u1", "2021-02-11T15:21:00Z", "add_to_cart", "", "p2"),
    ("s3", "u1", "2021-02-11T15:22:00Z", "add_to_cart", "", "p3"),
    ("s3", "u1", "2021-02-11T15:29:59Z", "checkout", "o2", ""),
    # ...and o2's parcel ships on 02-14: the export's last recorded activity, after every delivery in it.
    ("s3", "u1", "2021-02-14T00:00:00Z", "package_shipped", "o2", ""),
    # s4 (u2): views p3, adds it, checks out o3; ships next morning.
    ("s4", "u2", "2021-02-10T23:50:00Z", "page_view", "", "p3"),
    ("s4", "u2", "2021-02-10T23:55:00Z", "add_to_cart", "", "p3"),
    ("s4", "u2", "2021-02-10T23:59:58Z", "checkout", "o3", ""),
    ("s4", "u2", "2021-02-11T06:00:00Z", "package_shipped", "o3", ""),
    # s5 (u4): views p1, adds it, abandons the cart.
    ("s5", "u4", "2021-02-11T12:00:00Z", "page_view", "", "p1"),
    ("s5", "u4", "2021-02-11T12:01:00Z", "add_to_cart", "", "p1"),
    # s6 (u3): views p1, adds it, checks out o4 (o5 and o6 were phoned in: no events).
    ("s6", "u3", "2021-02-10T11:58:00Z", "page_view", "", "p1"),
    ("s6", "u3", "2021-02-10T11:58:30Z", "add_to_cart", "", "p1"),
    ("s6", "u3", "2021-02-10T11:59:59Z", "checkout", "o4", ""),
]
SHOP["events"] = [
    _event(n, session, user, at, kind, order, product)
    for n, (session, user, at, kind, order, product) in enumerate(_SESSIONS, start=1)
]

# Full names, emails, phone numbers and street addresses: what must never leave staging.
PERSONAL_VALUES = sorted(personal_values(SHOP))


def _quote(value: str) -> str:
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


RAW = "raw:"  # an edit writing "raw:<text>" into an id column gets <text> in the file, as it is
UID_PREFIX = "00000000-0000-4000-8000-"


def uid(name: str) -> str:
    """The UUID standing for a short id (at most 6 ASCII characters): its bytes in hex, at the end.
    An empty value stays empty (a missing id)."""
    if not name:
        return name
    encoded = name.encode("ascii").hex()
    assert len(encoded) <= 12, f"a fixture id is at most 6 characters: {name!r}"
    return UID_PREFIX + encoded.rjust(12, "0")


def _decode(found: re.Match) -> str:
    """The name a uid() spells, or the UUID as it is when it spells none (00000000dead, say)."""
    encoded = found.group(1)
    while encoded.startswith("00"):  # the padding: no ASCII character of a name is 00
        encoded = encoded[2:]
    spelled = bytes.fromhex(encoded).decode("ascii", errors="replace")
    return spelled if spelled.isprintable() and spelled.isascii() else found.group(0)


UID_TEXT = re.compile(re.escape(UID_PREFIX) + r"([0-9a-f]{12})")


def name(value: Any) -> Any:
    """Every uid() in `value` as the short name it stands for (a UUID, or text holding some, such as
    the key "o9 / p1"); recurses into tuples, lists and dicts; anything else unchanged."""
    if isinstance(value, (tuple, list)):
        return type(value)(name(v) for v in value)
    if isinstance(value, dict):
        return {name(k): name(v) for k, v in value.items()}
    if isinstance(value, uuid.UUID):
        value = str(value)
    return UID_TEXT.sub(_decode, value) if isinstance(value, str) else value


ID_COLUMNS = {table.name: {c.name for c in table.columns if c.type == ID} for table in RAW_TABLES}


def write_shop(folder: Path, edit: Callable[[Rows], None] | None = None) -> Path:
    """Write the shop as a raw export into `folder`; `edit` may change the rows first. Ids are
    written as uid(name), except a value an edit wrote as "raw:<text>" (RAW): <text> as it is,
    to give the loader a UUID in another form or a value that is not one."""
    rows = copy.deepcopy(SHOP)
    if edit:
        edit(rows)
    for table, ids in ID_COLUMNS.items():
        for row in rows[table]:
            for column in ids & row.keys():
                value = row[column]
                row[column] = value[len(RAW):] if value.startswith(RAW) else uid(value)
    folder.mkdir(parents=True, exist_ok=True)
    for table in RAW_TABLES:
        eol = "\r\n" if table.crlf else "\n"
        lines = [",".join(table.column_names)]
        lines += [",".join(_quote(row.get(c, "")) for c in table.column_names) for row in rows[table.name]]
        text = eol.join(lines) + (eol if table.final_newline else "")
        (folder / table.file_name).write_bytes(text.encode("utf-8"))
    return folder
