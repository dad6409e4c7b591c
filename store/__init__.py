"""The only code that knows Parley's Redis layout: key names, hash fields, report
counters, the Lua scripts and how their arguments are packed (the private modules,
`_keys`, `_codec`, `_protocol`, `_scripts`, and `lua/`). Everyone else uses its verbs:

- `conversations.ConversationStore`: load what a batch of events needs, apply decided
  writes (`writes.Write` and its ops), find what is due; the engine's consumer and
  sweeper are its two writers;
- `reader`: what the API and the operator's CLI read (conversations, queue pages,
  reports, action results); only the engine writes conversations;
- `outbox.Outbox`: the replies waiting for the sender;
- `channels`, `templates`, `registrations`, `directory`: channel settings, message
  templates, numbers registered through the API, users, teams and grants.
"""
