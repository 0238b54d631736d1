from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(null=True, max_length=40)),
                ('actor_kind', fields.CharField(max_length=32)),
                ('actor_id', fields.CharField(null=True, max_length=64)),
                ('event_type', fields.CharField(max_length=64)),
                ('aggregate_type', fields.CharField(max_length=32)),
                ('aggregate_id', fields.CharField(null=True, max_length=64)),
                ('payload', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('request_id', fields.CharField(null=True, max_length=128)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'audit_events', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Append-only record of one mutation: who, what, when. Payloads are redacted first.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Organization',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=200)),
                ('slug', fields.CharField(unique=True, max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'organizations', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The single organization a v1 coordinator serves (created with the first admin).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Server',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='servers', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('host', fields.CharField(null=True, max_length=255)),
                ('port', fields.IntField(null=True)),
                ('provider_key', fields.CharField(default='berth-agent', max_length=64)),
                ('target_kind', fields.CharField(default='single-server', max_length=32)),
                ('lifecycle_status', fields.CharField(default='active', max_length=16)),
                ('deactivated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('deactivation_reason', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('agent_public_key', fields.CharField(null=True, max_length=100)),
                ('agent_key_fingerprint', fields.CharField(null=True, max_length=48)),
                ('agent_enrolled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('agent_version', fields.CharField(null=True, max_length=64)),
                ('agent_facts', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('last_connected_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'servers', 'app': 'models', 'unique_together': (('organization', 'name'),), 'pk_attr': 'id', 'table_description': 'A deployment target backed by one enrolled agent.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='JoinToken',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('server', fields.ForeignKeyField('models.Server', source_field='server_id', db_constraint=True, to_field='id', related_name='join_tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'join_tokens', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A one-time, expiring token an agent trades for enrollment. Only a hash is stored.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='users', on_delete=OnDelete.CASCADE)),
                ('email', fields.CharField(unique=True, max_length=320)),
                ('display_name', fields.CharField(max_length=200)),
                ('role', fields.CharField(default='admin', max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'users', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A human operator (the first admin is created by the bootstrap call).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='api_tokens', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='api_tokens', on_delete=OnDelete.SET_NULL)),
                ('display_name', fields.CharField(max_length=200)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('secret_suffix', fields.CharField(max_length=8)),
                ('scope', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('status', fields.CharField(default='active', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('rotated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_tokens', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A bearer token in the Appaloft deploy-token shape. Only a SHA-256 hash is stored.'},
            bases=['Model'],
        ),
    ]
