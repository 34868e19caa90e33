// safety-hub long-term history for InfluxDB 2.x (docs/deploy.md, "Longer history").
//
// The raw bucket keeps every reading for its retention (at least 30 days). This task copies,
// every 5 minutes, the 5-minute mean, min and max of every reading into the long-term bucket
// as measurement `reading_5m` (fields mean, min, max; the same tags as `reading`), and every
// alarm event unchanged, so the boards' InfluxQL works on years of history at 5-minute
// resolution. Create the bucket and the task once:
//
//   influx bucket create --name safety_hub_longterm --retention 0 --org park
//   influx task create --org park --file deploy/influxdb/tasks/downsample.flux
//   influx v1 dbrp create --db safety_hub_longterm --rp autogen --default \
//       --bucket-id $(influx bucket list --name safety_hub_longterm --hide-headers | awk 'NR==1 {print $1}')
//
// Change `source` and `target` below if your buckets are named differently.
option task = {name: "safety-hub downsample 5m", every: 5m, offset: 1m}

source = "safety_hub"
target = "safety_hub_longterm"

readings =
    from(bucket: source)
        |> range(start: -task.every)
        |> filter(fn: (r) => r._measurement == "reading" and r._field == "value")

readings
    |> aggregateWindow(every: 5m, fn: mean, createEmpty: false)
    |> set(key: "_measurement", value: "reading_5m")
    |> set(key: "_field", value: "mean")
    |> to(bucket: target)

readings
    |> aggregateWindow(every: 5m, fn: min, createEmpty: false)
    |> set(key: "_measurement", value: "reading_5m")
    |> set(key: "_field", value: "min")
    |> to(bucket: target)

readings
    |> aggregateWindow(every: 5m, fn: max, createEmpty: false)
    |> set(key: "_measurement", value: "reading_5m")
    |> set(key: "_field", value: "max")
    |> to(bucket: target)

from(bucket: source)
    |> range(start: -task.every)
    |> filter(fn: (r) => r._measurement == "alarm_event" or r._measurement == "alarm_ack")
    |> to(bucket: target)
