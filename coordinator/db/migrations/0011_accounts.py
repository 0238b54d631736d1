from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0010_dependency_resources')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AccountCredential',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='credential', on_delete=OnDelete.CASCADE)),
                ('password_hash', fields.CharField(max_length=255)),
                ('password_changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('totp_secret', fields.TextField(null=True, unique=False)),
                ('totp_enabled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('totp_pending_secret', fields.TextField(null=True, unique=False)),
                ('totp_last_step', fields.BigIntField(null=True)),
                ('avatar_url', fields.CharField(null=True, max_length=500)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'account_credentials', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Local-password login and second factor of one user (a row once a password is set).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AccountSession',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='account_sessions', on_delete=OnDelete.CASCADE)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='account_sessions', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('csrf_hash', fields.CharField(max_length=64)),
                ('client_kind', fields.CharField(default='web', max_length=16)),
                ('display_name', fields.CharField(max_length=200)),
                ('ip_address', fields.CharField(null=True, max_length=64)),
                ('user_agent', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_active_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'account_sessions', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A login session: bearer secret (stored as SHA-256 only) and CSRF token of a browser.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecoveryCode',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='recovery_codes', on_delete=OnDelete.CASCADE)),
                ('code_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'account_recovery_codes', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A one-time second-factor code, stored as its SHA-256 only (the codes carry 80 bits).'},
            bases=['Model'],
        ),
    ]
