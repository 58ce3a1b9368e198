"""Hubs: where re-uploads live. The port is `base.Hub`; each hub is one subpackage (`huggingface/`,
`localdir/`) listed once in `registry.py`. `quota.py` (pacing to announced quotas) and `retry.py`
(backoff) are hub-neutral helpers a hub may use."""
