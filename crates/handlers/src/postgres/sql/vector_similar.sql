-- Exact nearest neighbours in one namespace: the dot product of every stored vector with the
-- query, which is cosine similarity as both are L2-normalised. A brute-force scan of the
-- namespace's rows (no ANN index: pgvector is not assumed); vectors of another length (a
-- different embedder) are skipped, and scores <= 0 (nothing in common) are dropped.
--
-- The query comes sparse, as its non-zero coordinates: 1-based indices $2 and weights $3, so
-- a hashing-embedder query (~20-40 non-zeros of 256) reads only those elements of each row,
-- ~6x faster than unnesting both whole arrays; a dense query costs no more than that.
-- `embedding[1:]` copies each row's array once, because subscripting a TOASTed array (over
-- ~2 KB, about 500 dimensions) would fetch and decompress it again for every element read.
-- Both subqueries are fenced (`offset 0`, `materialized`) so the planner neither re-reads the
-- array per element nor evaluates the score twice (once for `score > 0`, once for output).
with scored as materialized (
    select d.event_id, d.ts, d.event_type, d.source,
           (select sum(d.v[q.i] * q.w) from unnest($2::int[], $3::float8[]) as q(i, w)) as score
    from (
        select e.event_id, e.ts, e.event_type, e.source, e.embedding[1:] as v
        from search_embeddings e
        where e.namespace = $1
          and cardinality(e.embedding) = $4
        offset 0
    ) as d
)
select event_id, ts, event_type, source, score
from scored
where score > 0
order by score desc, ts desc, event_id
limit $5
