"""One way to write a time on every page (the admin, the status pages):
ISO date, time to the second, and the zone (TIME_ZONE, UTC), in place of
English's "Dec. 3, 2026, 6:27 a.m.". The status pages' script writes the
times it draws the same way."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = DATE_FORMAT
TIME_FORMAT = "H:i:s"
