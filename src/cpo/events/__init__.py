"""Events back from the email service: provider exports and webhooks to engagement.

:mod:`~cpo.events.formats` recognises a file (SendGrid Event Webhook JSON,
Mailgun Events API JSON, Amazon SES events via SNS, generic CSV) and parses it
into :class:`~cpo.events.records.Event` records; :mod:`~cpo.events.normalise`
joins them to the run's send list, deduplicates them, flags machine opens
(:mod:`~cpo.events.machine`), adds unsubscribes, hard bounces and complaints to
the suppression list and hands per-event rows to the engagement import;
:mod:`~cpo.events.signatures` verifies signed webhooks.
"""
