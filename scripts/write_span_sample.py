"""Writes ``data/span/sample.pa2``: a small CME SPAN risk-parameter file in the expanded unpacked format, each
field at the columns of CME's published layout (``docs/span-files.md``). The figures are made up for the tests
and stated below, not an exchange's: E-mini-like equity index futures and options (ES) and a second index future
(NQ), with tiers, a calendar spread, a delivery month, a short option minimum and an ES/NQ spread.

Run: ``.venv/bin/python scripts/write_span_sample.py`` (the file is committed; the tests read it, and work out
their expected figures by hand from the numbers here).
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "span" / "sample.pa2"


def record(*fields: tuple[int, str]) -> str:
    """A 132-column record from (1-based start column, text) pairs."""
    line = [" "] * 132
    for start, text in fields:
        assert start - 1 + len(text) <= 132, (start, text)
        for i, char in enumerate(text):
            assert line[start - 1 + i] == " ", f"overlap at column {start + i}"
            line[start - 1 + i] = char
    return "".join(line).rstrip()


def signed(value: int, digits: int) -> str:
    return f"{abs(value):0{digits}d}{'-' if value < 0 else '+'}"


def arrays(values: list[int]) -> tuple[str, str]:
    """The 81 record's values 1-9 and the 82 record's values 10-16, 5 digits and a sign each."""
    assert len(values) == 16
    return "".join(signed(v, 5) for v in values[:9]), "".join(signed(v, 5) for v in values[9:])


def future_arrays(scan: int, extreme: int) -> list[int]:
    third = [0, 0, -scan // 3, -scan // 3, scan // 3, scan // 3, -2 * scan // 3, -2 * scan // 3, 2 * scan // 3,
             2 * scan // 3, -scan, -scan, scan, scan, -extreme, extreme]
    return third


def risk(product: str, kind: str, month: str, values: list[int], delta: int, settlement: int,
         put_call: str = "", option_month: str = "", strike: int = 0) -> list[str]:
    first, second = arrays(values)
    key = [(3, "CME"), (6, product), (16, product if kind == "FUT" else product), (26, kind), (29, put_call),
           (30, month), (39, option_month), (48, f"{strike:07d}")]
    return [record((1, "81"), *key, (55, first), (109, f"{settlement:014d}"), (123, "N")),
            record((1, "82"), *key, (55, second), (97, signed(delta, 5)), (103, "00150000"),
                   (111, signed(settlement, 7)), (119, "+"))]


def main() -> None:
    lines = [
        record((1, "0 "), (3, "CME"), (9, "20261130"), (17, "S"), (18, "F"), (20, "1600"), (24, "20261130"),
               (32, "1745"), (36, "U2"), (38, "N"), (39, "Y")),
        record((1, "1 "), (3, "CME"), (8, "01")),
        # ES: futures and options on futures, premium style, USD; NQ: futures
        record((1, "2 "), (3, "CME"), (7, "ES"), (13, "0"), (14, "USD"), (17, "$"), (18, "P"), (19, "N"),
               (23, "ES"), (33, "FUT"), (39, "ES"), (49, "OOF")),
        record((1, "3 "), (3, "ES"), (9, "10"), (11, "01"), (13, "202612"), (19, "202612"), (25, "02"),
               (27, "202703"), (33, "202703"), (69, "1000"), (73, "1000"), (77, "1100")),
        # calendar spread tier 1 vs tier 2, one delta each side, 200 USD a spread
        record((1, "C "), (3, "ES"), (9, "10"), (11, "01"), (13, "02"), (15, "0000200"), (22, "01"), (24, "00"),
               (26, "01"), (28, "A"), (29, "02"), (31, "00"), (33, "01"), (35, "B")),
        # delivery month 202612: 10 USD per delta consumed by spreads, 50 per delta left; SOM 500 USD, method 1
        record((1, "4 "), (3, "ES"), (9, "10"), (11, "01"), (13, "01"), (15, "202612"), (21, "0000010"),
               (28, "0000050"), (63, "0000500"), (70, "100"), (73, "100"), (76, "100"), (79, "1")),
        record((1, "P "), (3, "CME"), (6, "ES"), (16, "FUT"), (19, "E-MINI S&P FUT"), (34, "002"), (37, "000"),
               (42, "00002500000000"), (64, "01"), (66, "USD"), (69, "$"), (70, "STD"), (73, "000")),
        record((1, "P "), (3, "CME"), (6, "ES"), (16, "OOF"), (19, "E-MINI S&P OPT"), (34, "002"), (37, "000"),
               (42, "00002500000000"), (64, "01"), (66, "USD"), (69, "$"), (70, "STD"), (73, "000")),
        record((1, "B "), (3, "CME"), (6, "ES"), (16, "FUT"), (19, "202612"), (37, "00150000"), (45, "00350000"),
               (53, "15000"), (58, "03000"), (63, "03500"), (68, "00400"), (73, "0000520"), (80, "003968"),
               (86, "010000"), (92, "20261218"), (100, "ES"), (110, "01")),
        *risk("ES", "FUT", "202612", future_arrays(15000, 15750), 10000, 600000),
        *risk("ES", "FUT", "202703", future_arrays(15300, 16065), 10000, 607500),
        *risk("ES", "OOF", "202612", [-800, 700, -3000, -1500, 1500, 2500, -5800, -4600, 3000, 3600, -9000, -8000,
                                      3800, 4200, -8800, 1600], 4500, 12550, "C", "202612", 6000),
        *risk("ES", "OOF", "202612", [-700, 600, 1300, 2000, -2200, -1000, 2500, 3000, -5000, -4000, 3200, 3500,
                                      -8500, -7600, 1400, -7500], -3000, 9825, "P", "202612", 5800),
        *risk("ES", "OOF", "202612", [-5, 3, -8, -2, 4, 6, -15, -6, 5, 8, -30, -20, 6, 9, -40, 10], 100, 40,
              "C", "202612", 7000),
        record((1, "2 "), (3, "CME"), (7, "NQ"), (13, "0"), (14, "USD"), (17, "$"), (18, "P"), (19, "N"),
               (23, "NQ"), (33, "FUT")),
        record((1, "P "), (3, "CME"), (6, "NQ"), (16, "FUT"), (19, "E-MINI NDX FUT"), (34, "002"), (37, "000"),
               (42, "00000200000000"), (64, "01"), (66, "USD"), (69, "$"), (70, "STD"), (73, "000")),
        *risk("NQ", "FUT", "202612", future_arrays(24000, 25200), 10000, 2100000),
        record((1, "5 "), (3, "EQI"), (13, "ES"), (19, "NQ")),
        # ES vs NQ: one delta each side, 50% credit on the legs' weighted price risk
        record((1, "6 "), (3, "EQI"), (6, "0001"), (10, "0500000"), (17, "CME"), (20, "N"), (21, "ES"),
               (27, "0010000"), (34, "A"), (35, "CME"), (38, "N"), (39, "NQ"), (45, "0010000"), (52, "B"),
               (101, "W")),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="ascii")
    print(f"wrote {OUT} ({len(lines)} records)")


if __name__ == "__main__":
    main()
