"""What PQL can see of the emulator's population: profile attributes and ExperienceEvent fields, by type.

These are the fields of the exported XDM records (emulator/exportdata/records.py and events.py); a test
checks that the evaluator can build every one of them. Relative time (`now`, `today`, `occurs last month`,
`currentYear()`) is measured from EVALUATION_MS, the instant at which the population is evaluated: the end
of the population's fixed one-year window, so that a definition selects the same people on any day.
"""

from __future__ import annotations

from datetime import UTC, datetime

STRING = "string"
NUMBER = "number"
BOOLEAN = "boolean"
TIMESTAMP = "timestamp"  # dates too: a date is its midnight, UTC

EVALUATION_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)

PROFILE_FIELDS: dict[str, str] = {
    "person.name.firstName": STRING,
    "person.name.lastName": STRING,
    "person.birthDate": TIMESTAMP,
    "personalEmail.address": STRING,
    "mobilePhone.number": STRING,
    "homeAddress.street1": STRING,
    "homeAddress.city": STRING,
    "homeAddress.postalCode": STRING,
    "homeAddress.country": STRING,
    "homeAddress.countryCode": STRING,
    "_repo.modifyDate": TIMESTAMP,
}
EVENT_FIELDS: dict[str, str] = {
    "_id": STRING,
    "eventType": STRING,
    "timestamp": TIMESTAMP,
    "_acp_system_metadata.ingestTime": NUMBER,
}
EVENTS = "xEvent"  # PQL's reserved name for a profile's ExperienceEvents
