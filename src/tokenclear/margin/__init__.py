"""Margin methods: HS-VaR, filtered HS, SPAN-style, AS-VaR, percentage of notional; add-ons; APC; VM; backtests."""
