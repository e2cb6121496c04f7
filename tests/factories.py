"""Factories for the models; each makes a real row through the services where one exists."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from brandkits.models import BrandKit
from clips.models import Clip, Upload
from projects.models import Membership, Project, Team


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Team {n}")

    @factory.post_generation
    def default_project(obj, create, extracted, **kwargs):
        if create:
            Project.objects.get_or_create(
                team=obj, is_default=True, defaults={"name": "Default project"}
            )


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Project {n}")


class BrandKitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BrandKit

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Brand {n}")


class UploadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Upload

    team = factory.SubFactory(TeamFactory)
    filename = "video.mp4"
    content_type = "video/mp4"
    size_bytes = 4
    sha256 = "0" * 64
    file = factory.django.FileField(filename="video.mp4", data=b"\x00\x00\x00\x18")


class ClipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clip

    team = factory.SubFactory(TeamFactory)
    project = factory.LazyAttribute(lambda o: Project.objects.get(team=o.team, is_default=True))
    name = factory.Sequence(lambda n: f"Clip {n}")
    source_url = "https://example.com/video.mp4"
