"""Delivery: ``cpo send`` over SMTP, each recipient at most once.

* :mod:`cpo.delivery.ledger` - the durable send ledger (SQLite, in the run folder);
* :mod:`cpo.delivery.message` - one multipart/alternative message per send-list row;
* :mod:`cpo.delivery.smtp` - the SMTP client: TLS, login, retries with backoff;
* :mod:`cpo.delivery.send` - the send loop: checks, suppressions, rate, ledger.
"""
