"""The query engine: PostHog queries (TrendsQuery first) compiled to SQL over `events`, and the result cache.

One path renders every result (`render.render_query`): effective query → cache → compute on a
`QueryBackend` → PostHog-shaped result → cache. Insights, tiles, streams, shares and snapshots all call it.
The cache keeps each team within a byte budget (`cache.write`), ad-hoc results evicted before saved ones.
"""
