"""``tokenclear serve``: the clearing system as a service: the HTTP API and dashboard (:mod:`.api`,
:mod:`.dashboard`) and the scheduler (:mod:`.scheduler`) over one :class:`~.core.Service`, which holds the
workflow, the store and the ledger. The API and the scheduler call the same workflow; nothing here repeats its
logic."""
