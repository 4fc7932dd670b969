// An OpenTelemetry MetricReader collected by hand (cumulative), for tests that read exact points.
import { AggregationTemporality, MetricReader } from '@opentelemetry/sdk-metrics';

export class ManualReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}
