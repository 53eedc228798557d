"""Default management: close-out costs in the market, the default waterfall."""
