"""Application services (bridges, bots): spec "Application Service API", as Synapse serves it.

- `registrations`: the registration files named by `app_service_config_files`, read and
  checked at start (the records themselves are pure: `homeserver.core.appservices`);
- `client`: our HTTP requests to appservices (transactions, user and alias queries, pings);
- `interest`: which rooms concern which appservice (room ID, local aliases, local members);
- `transactions`: what goes into an appservice's next transaction (events, ephemeral data,
  to-device messages, MSC3202 device lists and key counts), read from the streams;
- `sender`: one feed per appservice, persisted, in order, with back-off and restart recovery;
- `queries`: asking appservices about unknown users and aliases, and pings both ways.

Requests *from* appservices (as_token, `user_id`, `ts`, registration and login of their users,
exclusive namespaces) are handled where those requests land (services.auth, accounts, rooms),
which read the registry from `AuthService.appservices`.

May use: rooms/, ephemeral/, accounts/, streams/, auth, clock, `storage`, `homeserver.core`,
`homeserver.config`, `homeserver.errors` (not e2ee/ or identity/, its siblings).
"""
