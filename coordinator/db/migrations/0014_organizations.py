from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from orjson import loads
from tortoise.fields.data import JSON_DUMPS

class Migration(migrations.Migration):
    dependencies = [('models', '0013_notifications')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OrganizationInvitation',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='invitations', on_delete=OnDelete.CASCADE)),
                ('email', fields.CharField(max_length=320)),
                ('role', fields.CharField(max_length=16)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('inviter_user_id', fields.CharField(null=True, max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('accepted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('accepted_user_id', fields.CharField(null=True, max_length=40)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'organization_invitations', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An invitation to join with a role: a one-time link secret, stored as SHA-256 only.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OrganizationMember',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharField(max_length=16)),
                ('project_roles', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'organization_members', 'app': 'models', 'unique_together': (('organization', 'user'),), 'pk_attr': 'id', 'table_description': "One user's membership of one organization, with its role there."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='ApiToken',
            name='created_by_user_id',
            field=fields.CharField(null=True, db_index=True, max_length=40),
        ),
        ops.AddField(
            model_name='Organization',
            name='deleted_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Organization',
            name='logo_url',
            field=fields.CharField(null=True, max_length=500),
        ),
        ops.AddField(
            model_name='Organization',
            name='updated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        # Every existing user becomes a member of its organization; v1's admins become owners
        # (someone must be able to transfer ownership). Portable SQL (SQLite and PostgreSQL).
        ops.RunSQL(
            "INSERT INTO organization_members (id, organization_id, user_id, role, joined_at, updated_at) "
            "SELECT 'mem_' || substr(id, 5), organization_id, id, "
            "CASE role WHEN 'admin' THEN 'owner' ELSE role END, created_at, created_at FROM users",
            reverse_sql="DELETE FROM organization_members",
        ),
    ]
