"""Bounds of run parameters shared by the settings (environment), the CLI options and the numeric cores."""

#: The longest margin period of risk accepted, business days (a year): beyond it no history scales.
MAX_MPOR_DAYS = 250

#: Confidence levels of a VaR or a haircut lie in [MIN_CONFIDENCE, 1).
MIN_CONFIDENCE = 0.5

#: Haircut quantile curves reach this many days (beyond, by the square root of time): the longest haircut MPOR.
MAX_HAIRCUT_MPOR_DAYS = 20
