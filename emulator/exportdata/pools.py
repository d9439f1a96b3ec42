"""Realistic values from Faker (names, addresses, e-mail domains), made once per seed.

Faker makes a few thousand profiles a second, far too slow for exports of millions. So Faker runs once per
seed, to fill pools of values, and every value of a profile is picked from those pools by the
counter-based hash (see `hashing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import faker
import pyarrow as pa

POOL_SIZE = 1000  # values of each kind, shared out among the locales
# Faker locale, homeAddress.country, homeAddress.countryCode, phone country calling code.
LOCALES = (
    ("en_US", "United States", "US", "+1"),
    ("en_GB", "United Kingdom", "GB", "+44"),
    ("de_DE", "Germany", "DE", "+49"),
    ("fr_FR", "France", "FR", "+33"),
)
EVENT_TYPES = (
    "web.webpagedetails.pageViews",
    "web.webinteraction.linkClicks",
    "commerce.productViews",
    "commerce.productListAdds",
    "commerce.checkouts",
    "commerce.purchases",
    "application.launch",
    "message.feedback",
)


@dataclass(frozen=True)
class Pools:
    """Per locale, `per_locale` consecutive entries of each aligned pool."""

    per_locale: int
    phone_prefixes: pa.Array
    first_names: pa.Array
    last_names: pa.Array
    email_first: pa.Array  # first names made e-mail-safe, aligned with first_names
    email_last: pa.Array
    email_domains: pa.Array
    streets: pa.Array
    cities: pa.Array
    postal_codes: pa.Array
    countries: pa.Array
    country_codes: pa.Array
    event_types: pa.Array


@lru_cache(maxsize=4)
def pools(seed: int) -> Pools:
    """Realistic values from Faker, made once per seed (Faker is deterministic for a seed and version)."""
    first: list[str] = []
    last: list[str] = []
    streets: list[str] = []
    cities: list[str] = []
    postal: list[str] = []
    countries: list[str] = []
    codes: list[str] = []
    per_locale = POOL_SIZE // len(LOCALES)
    for number, (locale, country, code, _) in enumerate(LOCALES):
        fake = faker.Faker(locale)
        fake.seed_instance(seed * 31 + number)
        for _ in range(per_locale):
            first.append(fake.first_name())
            last.append(fake.last_name())
            streets.append(fake.street_address().replace("\n", ", "))
            cities.append(fake.city())
            postal.append(fake.postcode())
            countries.append(country)
            codes.append(code)
    fake = faker.Faker("en_US")
    fake.seed_instance(seed)
    domains = sorted({fake.free_email_domain() for _ in range(50)})
    return Pools(
        per_locale=per_locale,
        phone_prefixes=pa.array([prefix for *_, prefix in LOCALES]),
        first_names=pa.array(first),
        last_names=pa.array(last),
        email_first=pa.array([_email_safe(name) for name in first]),
        email_last=pa.array([_email_safe(name) for name in last]),
        email_domains=pa.array(domains),
        streets=pa.array(streets),
        cities=pa.array(cities),
        postal_codes=pa.array(postal),
        countries=pa.array(countries),
        country_codes=pa.array(codes),
        event_types=pa.array(EVENT_TYPES),
    )


def _email_safe(name: str) -> str:
    ascii_only = name.lower().encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_only if c.isalnum()) or "user"
