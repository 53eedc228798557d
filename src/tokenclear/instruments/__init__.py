"""Contract specifications (catalogue, underlyings) and stateless pricers."""
