-- An application's own schema, migrated by its own sqlx::migrate!() beside Conveyor's.
create table orders (id bigint primary key, status text not null);
