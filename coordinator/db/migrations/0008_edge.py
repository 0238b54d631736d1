from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_certificates')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AccessFailureEvidence',
            fields=[
                ('request_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('organization_id', fields.CharField(max_length=40)),
                ('server_id', fields.CharField(max_length=40)),
                ('resource_id', fields.CharField(null=True, max_length=64)),
                ('hostname', fields.CharField(max_length=255)),
                ('path', fields.CharField(max_length=2048)),
                ('captured_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('evidence', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'access_failure_evidence', 'app': 'models', 'pk_attr': 'request_id', 'table_description': "One request an agent's edge could not serve, as ``resource-access-failure/v1``."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EdgeProxyState',
            fields=[
                ('server_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(max_length=40)),
                ('proxy_kind', fields.CharField(default='caddy', max_length=16)),
                ('listen', fields.CharField(null=True, max_length=64)),
                ('tls_listen', fields.CharField(null=True, max_length=64)),
                ('http3', fields.BooleanField(default=False)),
                ('acme_email', fields.CharField(null=True, max_length=254)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('last_attempt_id', fields.CharField(null=True, max_length=40)),
                ('last_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_succeeded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error_code', fields.CharField(null=True, max_length=64)),
                ('last_error_message', fields.CharField(null=True, max_length=1000)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'edge_proxy_states', 'app': 'models', 'pk_attr': 'server_id', 'table_description': "A server's edge proxy settings (set through the API, pushed to its agent on every"},
            bases=['Model'],
        ),
    ]
