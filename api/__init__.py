"""The /v1 API for agents and admins: a sub-application the receiver mounts at /v1
(`api.app.create_app`), served and documented (OpenAPI 3.1) from one endpoint table."""
