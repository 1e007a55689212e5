-- The last tick recorded for periodic event $2 in namespace $1.
select last_tick from conveyor_periodic where namespace = $1 and name = $2
