"""The shared wrappers of the drivers several components use (Redis, PostgreSQL, MySQL, etcd,
ZooKeeper, SQLite): settings, connection pools, call timeouts and driver errors as data. Not
components themselves; the components of each capability build on them."""
