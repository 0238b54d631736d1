from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0016_default_access')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DnsProvider',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=100)),
                ('kind', fields.CharField(default='rfc2136', max_length=16)),
                ('server_host', fields.CharField(max_length=253)),
                ('server_port', fields.IntField(default=53)),
                ('zone', fields.CharField(max_length=253)),
                ('tsig_key_name', fields.CharField(max_length=253)),
                ('tsig_algorithm', fields.CharField(max_length=20)),
                ('tsig_secret_encrypted', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'dns_providers', 'app': 'models', 'unique_together': (('organization_id', 'name'),), 'pk_attr': 'id', 'table_description': 'An authoritative DNS server Berth may change over RFC 2136, with its TSIG key (sealed).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WildcardCertificate',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('dns_provider_id', fields.CharField(db_index=True, max_length=40)),
                ('domain_name', fields.CharField(max_length=253)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('acme_directory', fields.CharField(max_length=500)),
                ('issuer', fields.CharField(null=True, max_length=500)),
                ('subject_alternative_names', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('not_before', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('not_after', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('issued_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('fingerprint', fields.CharField(null=True, max_length=100)),
                ('key_algorithm', fields.CharField(null=True, max_length=40)),
                ('certificate_chain', fields.TextField(null=True, unique=False)),
                ('private_key_encrypted', fields.TextField(null=True, unique=False)),
                ('account_key_encrypted', fields.TextField(null=True, unique=False)),
                ('next_attempt_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wildcard_certificates', 'app': 'models', 'unique_together': (('organization_id', 'domain_name'),), 'pk_attr': 'id', 'table_description': '``*.{domain_name}`` and ``{domain_name}``, ordered by the coordinator over DNS-01.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WildcardCertificateAttempt',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('certificate', fields.ForeignKeyField('models.WildcardCertificate', source_field='certificate_id', db_constraint=True, to_field='id', related_name='attempts', on_delete=OnDelete.CASCADE)),
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
            options={'table': 'wildcard_certificate_attempts', 'app': 'models', 'pk_attr': 'id', 'table_description': "One order (issue, renew or retry) and how it ended, in the certificate attempt's terms."},
            bases=['Model'],
        ),
    ]
