package io.github.tweetstream.flink.lenient;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.types.DataType;

import java.lang.reflect.Proxy;

/**
 * The few planner and runtime contexts the format touches, as proxies: the tests need no
 * planner (flink-table-runtime), only what the format calls.
 */
final class Contexts {

    /** The physical value columns of the `tweets` table (all nullable, as the format needs). */
    static final DataType PHYSICAL =
            DataTypes.ROW(
                    DataTypes.FIELD("id", DataTypes.STRING()),
                    DataTypes.FIELD("text", DataTypes.STRING()),
                    DataTypes.FIELD("created_at", DataTypes.BIGINT()));

    /** What createTypeInformation hands back (the planner's InternalTypeInfo in a real run). */
    static final TypeInformation<RowData> PRODUCED_TYPE = Types.GENERIC(RowData.class);

    private Contexts() {}

    /** Records the DataType the format asked type information for. */
    static final class SourceContext {
        DataType typeInfoRequestedFor;

        DynamicTableSource.Context proxy() {
            return (DynamicTableSource.Context)
                    Proxy.newProxyInstance(
                            Contexts.class.getClassLoader(),
                            new Class<?>[] {DynamicTableSource.Context.class},
                            (p, method, args) -> {
                                if (method.getName().equals("createTypeInformation")
                                        && args[0] instanceof DataType) {
                                    typeInfoRequestedFor = (DataType) args[0];
                                    return PRODUCED_TYPE;
                                }
                                throw new UnsupportedOperationException(method.getName());
                            });
        }
    }

    static DynamicTableFactory.Context factoryContext() {
        return (DynamicTableFactory.Context)
                Proxy.newProxyInstance(
                        Contexts.class.getClassLoader(),
                        new Class<?>[] {DynamicTableFactory.Context.class},
                        (p, method, args) -> {
                            if (method.getName().equals("getClassLoader")) {
                                return Contexts.class.getClassLoader();
                            }
                            throw new UnsupportedOperationException(method.getName());
                        });
    }

    static DeserializationSchema.InitializationContext initContext() {
        return (DeserializationSchema.InitializationContext)
                Proxy.newProxyInstance(
                        Contexts.class.getClassLoader(),
                        new Class<?>[] {DeserializationSchema.InitializationContext.class},
                        (p, method, args) -> {
                            throw new UnsupportedOperationException(method.getName());
                        });
    }
}
