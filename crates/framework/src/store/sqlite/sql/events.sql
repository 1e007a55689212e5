-- Events of namespace $1 with ids in ($7, $8], oldest id first, in every state, with the
-- status operators see (see `EventStatus`): a lookup by id is the range (id - 1, id].
-- $2/$3 event type and routing key (null for every queue), $4 reported status (null for
-- every status), $5/$6 published from / until in ms (null for no bound), $7 cursor (id),
-- $8 last id, $9 limit, $10 now (ms)
select *
  from (select id, event_type, routing_key,
               case when status = 'claimed' then 'running'
                    when status = 'pending' and blocked then 'waiting'
                    when status = 'pending' and attempts > 0 then 'retrying'
                    when status = 'pending' and available_at > $10 then 'scheduled'
                    else status end as status,
               payload, attempts, priority, fairness_key, ordering_key, idempotency_key,
               causation_id, correlation_id, traceparent, created_at, available_at, updated_at,
               claimed_by, lease_expires_at, last_error,
               errors, cancel_reason
          from conveyor_events
         where namespace = $1
           and ($2 is null or (event_type = $2 and routing_key = $3))
           and ($5 is null or created_at >= $5)
           and ($6 is null or created_at < $6)
           and id > $7 and id <= $8)
 where $4 is null or status = $4
 order by id
 limit $9
