"""`GET /workers`: every worker the gateway has seen, as a JSON array:
its peer ID, address, labels and queues (what it serves: runs go only to a
worker serving their task's queue and having every label of its
constraints), concurrency, runs in flight, whether it is connected, and
when it was last seen."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks_app import selectors
from tasks_app.models import WorkerNode


class WorkerSerializer(serializers.ModelSerializer):
    peer = serializers.CharField(source="peer_id", help_text="the worker's peer ID")
    labels = serializers.DictField(
        child=serializers.CharField(), help_text="labels it has (runworker --labels)"
    )
    queues = serializers.ListField(
        child=serializers.CharField(), help_text="queues it serves (runworker --queues)"
    )

    class Meta:
        model = WorkerNode
        fields = [
            "peer",
            "address",
            "labels",
            "queues",
            "concurrency",
            "in_flight",
            "connected",
            "last_seen",
        ]


_shape = WorkerSerializer()


class WorkerListView(APIView):
    @extend_schema(
        operation_id="workers_list",
        summary="List workers",
        description="Every worker seen, connected ones first: what it serves (`labels`, "
        "`queues`), its slots (`concurrency`) and runs `in_flight` (refreshed about every "
        "second), `connected` and `last_seen`.",
        responses={200: WorkerSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response([_shape.to_representation(w) for w in selectors.workers()])
