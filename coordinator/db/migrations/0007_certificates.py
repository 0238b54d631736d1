from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_domain_proxy_readiness')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Certificate',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('domain_binding', fields.ForeignKeyField('models.DomainBinding', source_field='domain_binding_id', db_constraint=True, to_field='id', related_name='certificates', on_delete=OnDelete.CASCADE)),
                ('server_id', fields.CharField(null=True, max_length=40)),
                ('domain_name', fields.CharField(max_length=253)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('source', fields.CharField(default='managed', max_length=16)),
                ('provider_key', fields.CharField(max_length=500)),
                ('challenge_type', fields.CharField(null=True, max_length=20)),
                ('issuer', fields.CharField(null=True, max_length=500)),
                ('subject_alternative_names', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('not_before', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('not_after', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('issued_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('fingerprint', fields.CharField(null=True, max_length=100)),
                ('key_algorithm', fields.CharField(null=True, max_length=40)),
                ('certificate_chain', fields.TextField(null=True, unique=False)),
                ('private_key_encrypted', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'certificates', 'app': 'models', 'unique_together': (('domain_binding', 'source'),), 'pk_attr': 'id', 'table_description': 'One certificate lifecycle of a domain binding: ``managed`` (ACME) or ``imported``.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CertificateAttempt',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('certificate', fields.ForeignKeyField('models.Certificate', source_field='certificate_id', db_constraint=True, to_field='id', related_name='attempts', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharField(max_length=16)),
                ('reason', fields.CharField(default='issue', max_length=16)),
                ('provider_key', fields.CharField(max_length=500)),
                ('challenge_type', fields.CharField(null=True, max_length=20)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('issued_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('fingerprint', fields.CharField(null=True, max_length=100)),
                ('error_code', fields.CharField(null=True, max_length=60)),
                ('failure_phase', fields.CharField(null=True, max_length=16)),
                ('failure_message', fields.TextField(null=True, unique=False)),
                ('failure_details', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('retriable', fields.BooleanField(null=True)),
                ('retry_after', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'certificate_attempts', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One issuance (or renewal, or import) attempt and how it ended.'},
            bases=['Model'],
        ),
    ]
