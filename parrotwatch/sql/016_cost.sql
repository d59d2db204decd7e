-- Cost (issue 16): list-price cost of each request in US$, from its token counts and the dated
-- price table (parrotwatch/detectors/data/model_prices.yaml); null for a model without a price.
ALTER TABLE inference_scores ADD COLUMN cost_usd double precision;
