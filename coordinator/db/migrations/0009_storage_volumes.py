from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_edge')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StorageVolume',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='storage_volumes', on_delete=OnDelete.CASCADE)),
                ('project_id', fields.CharField(db_index=True, max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('server_id', fields.CharField(null=True, max_length=40)),
                ('name', fields.CharField(max_length=100)),
                ('slug', fields.CharField(max_length=100)),
                ('kind', fields.CharField(max_length=16)),
                ('source_path', fields.CharField(null=True, max_length=1000)),
                ('description', fields.CharField(null=True, max_length=2000)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'storage_volumes', 'app': 'models', 'unique_together': (('environment_id', 'slug'),), 'pk_attr': 'id', 'table_description': 'Durable storage on one server: a Docker named volume or a bind-mounted host directory.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StorageAttachment',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('volume', fields.ForeignKeyField('models.StorageVolume', source_field='volume_id', db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.RESTRICT)),
                ('resource', fields.ForeignKeyField('models.Resource', source_field='resource_id', db_constraint=True, to_field='id', related_name='storage_attachments', on_delete=OnDelete.CASCADE)),
                ('destination_path', fields.CharField(max_length=1000)),
                ('mount_mode', fields.CharField(default='read-write', max_length=16)),
                ('attached_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'storage_attachments', 'app': 'models', 'unique_together': (('resource', 'destination_path'),), 'pk_attr': 'id', 'table_description': "A volume mounted into a resource's containers at ``destination_path``."},
            bases=['Model'],
        ),
    ]
